// The input transform of a uint8 batch, fused in one kernel: crop, horizontal flip, mean
// subtraction and scaling, uint8 (N, D, H, W, C) -> fp32 (N, D, out_h, out_w, C):
//   y[n, t, i, j, ch] = (x[n, t, y0[n] + i, flip[n] ? x0[n] + out_w - 1 - j : x0[n] + j, ch]
//                        - mean[ch]) * scale
// with (y0, x0) = crops[2n], crops[2n+1] and flip[n] in device memory (the loader's per-clip
// plan), mean (c floats, or null for none) in device memory. The loader keeps clips uint8 up
// to the device (4x fewer PCIe bytes, data/recipe.h); this is the step that makes them floats.
// Cost: memory-bound, 1 byte read + 4 written per output element; no arithmetic to speak of.
//
// Its CPU specification lives for now in tests/gpu/parity_ops.cpp (no kernels/cpu twin yet).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cu3d::cuda {

struct InputTransformShape {
  int n = 1, d = 1, h = 1, w = 1, c = 1;  // the uint8 batch
  int out_h = 1, out_w = 1;               // the crop
  int64_t input_size() const { return int64_t(n) * d * h * w * c; }
  int64_t output_size() const { return int64_t(n) * d * out_h * out_w * c; }
};

// Crops must lie inside the frame (checked by the loader that plans them; an out-of-range crop
// here reads zeros rather than memory outside the batch).
void input_transform(const InputTransformShape& s, const uint8_t* x, const int32_t* crops,
                     const uint8_t* flips, const float* mean, float scale, float* y,
                     cudaStream_t stream);

}  // namespace cu3d::cuda
