// 3D max pooling on the GPU: the CUDA twins of kernels/cpu/pool3d.h (same semantics: padded
// positions never win, a NaN in a window makes the output NaN, the gradient of each output goes
// to the first input of its window in (d, h, w) order equal to the output, none for a NaN).
//
// Forward: one thread per output element, or per 4 channels with 16-byte loads when c is a
// multiple of 4 (every C3D pool); C3D's windows (2x2x2, 1x2x2) have unrolled kernels that keep all
// of a window's loads in flight at once (pool_window.cuh, window_max; the backward's first pass
// too). Cost: forward reads each window (window.d*window.h*window.w loads per output, mostly
// cache hits when the stride equals the window) and writes y: 4*(|x| + |y|) bytes from DRAM.
// Backward, deterministic (no atomics), in one of two ways:
//   - disjoint windows (stride >= window on every axis: every C3D pool): one thread per output
//     element (or 4 channels) reads its window once, finds the first max, and writes the window's
//     dx (dy there, 0 elsewhere); dx is cleared first only where windows leave gaps. Bytes:
//     4*(2|x| + 2|y|), the floor (plus the clear where windows leave gaps). The earlier gather
//     below re-read the whole window for every input element, 8x the reads of x: 5-9 % of the
//     H200's copy bandwidth on C3D's pools.
//   - overlapping windows: a gather, one thread per input element, that visits the windows
//     containing it and finds each one's first max.
#pragma once

#include <cuda_runtime.h>

#include "kernels/shapes.h"

namespace cu3d::cuda {

void maxpool3d_fwd(const Pool3dShape& s, const float* x, float* y, cudaStream_t stream);

void maxpool3d_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy, float* dx,
                   cudaStream_t stream);

// maxpool3d_bwd for x a ReLU's output with the ReLU's backward folded in (cpu::maxpool3d_relu_bwd):
// the same kernels, each window's gradient dropped where its max is not positive. Bytes as
// maxpool3d_bwd's; the separate ReLU backward it replaces read x and dx and wrote dx (3|x|).
void maxpool3d_relu_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy,
                        float* dx, cudaStream_t stream);

}  // namespace cu3d::cuda
