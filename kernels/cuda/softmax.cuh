// Softmax over the last axis on the GPU: the CUDA twin of kernels/cpu/softmax.h, (rows, cols)
// fp32 arrays in device memory.
//
// One warp per row: the row maximum, the sum of exponentials and the normalized outputs are
// three passes over a row that stays in L1 (cols up to a few thousand: classes, or channels
// when softmax is a conv activation). Backward: one warp per row computes sum_k dy[k] * y[k]
// and writes dx = y * (dy - sum).
// Cost: forward 12 bytes and one exp per element (read x, re-read from L1, write y); backward
// 12 bytes per element (y, dy, dx): memory-bound.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cpu/softmax.h"

namespace cu3d::cuda {

using cpu::SoftmaxShape;

void softmax_fwd(const SoftmaxShape& s, const float* x, float* y, cudaStream_t stream);

void softmax_bwd(const SoftmaxShape& s, const float* y, const float* dy, float* dx,
                 cudaStream_t stream);

}  // namespace cu3d::cuda
