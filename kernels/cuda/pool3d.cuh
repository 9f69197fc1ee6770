// 3D max pooling on the GPU: the CUDA twins of kernels/cpu/pool3d.h (same semantics: padded
// positions never win, a NaN in a window makes the output NaN, the gradient of each output goes
// to the first input of its window in (d, h, w) order equal to the output, none for a NaN).
//
// Forward: one thread per output element, or per 4 channels with 16-byte loads when c is a
// multiple of 4 (every C3D pool). Cost: forward reads each window (window.d*window.h*window.w loads
// per output, mostly cache hits when the stride equals the window) and writes y: 4*(|x| + |y|)
// bytes from DRAM. Backward is a gather, one thread per input element, deterministic (no atomics):
// it visits the windows that contain the element and, for each, finds the window's first max. With
// C3D's non-overlapping windows that is one window of 8 (or 4) reads per input.
#pragma once

#include <cuda_runtime.h>

#include "kernels/shapes.h"

namespace cu3d::cuda {

void maxpool3d_fwd(const Pool3dShape& s, const float* x, float* y, cudaStream_t stream);

void maxpool3d_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy, float* dx,
                   cudaStream_t stream);

}  // namespace cu3d::cuda
