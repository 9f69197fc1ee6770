// The input transform of a uint8 batch on the GPU, fused in one kernel: the CUDA twin of
// kernels/cpu/input_transform.h (crop, horizontal flip, mean subtraction and scaling, uint8
// (N, D, H, W, C) -> fp32 (N, D, out_h, out_w, C)), with crops (2n int32), flips (n uint8) and
// mean (c floats, or null for none) in device memory.
// Cost: memory-bound, 1 byte read + 4 written per output element; no arithmetic to speak of.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cpu/input_transform.h"

namespace cu3d::cuda {

using cpu::InputTransformShape;

// Crops must lie inside the frame (the CPU twin throws; a kernel cannot, so an out-of-range
// crop here reads zeros rather than memory outside the batch).
void input_transform(const InputTransformShape& s, const uint8_t* x, const int32_t* crops,
                     const uint8_t* flips, const float* mean, float scale, float* y,
                     cudaStream_t stream);

}  // namespace cu3d::cuda
