// Batch normalization on the GPU: the CUDA twin of kernels/cpu/batch_norm.h (per-channel
// statistics over the rows of a channels-last (rows, c) array, PyTorch's running-statistics
// convention, the same saved mean/rstd and backward). All pointers are fp32 device memory.
//
// Statistics: per-channel sums over chunks of rows, accumulated in double by blocks of
// 32 channels x 8 row lanes (each warp reads 32 consecutive channels of a row: 128 coalesced
// bytes), then one thread per channel adds the chunk partials in order (deterministic).
// Training runs it once for both statistics (the sums of d = x - shift and d^2, the shift a
// sample of the channel, so a large mean costs no precision), then one elementwise pass writes
// y. The elementwise passes keep each thread on one channel (or a float4 of four), no division
// per element.
// Cost: training forward reads x twice and writes y (12 bytes per element, the least an
// activation larger than the chip's memory allows), eval reads x once (8 bytes), backward reads
// x and dy twice and writes dx (20 bytes): memory-bound.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cpu/batch_norm.h"

namespace cu3d::cuda {

using cpu::BatchNormShape;

void batch_norm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma,
                          const float* beta, float eps, float momentum, float* y, float* mean,
                          float* rstd, float* running_mean, float* running_var,
                          cudaStream_t stream);

void batch_norm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma,
                         const float* beta, const float* running_mean, const float* running_var,
                         float eps, float* y, float* mean, float* rstd, cudaStream_t stream);

void batch_norm_bwd(const BatchNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, bool batch_stats, float* dx, float* dgamma,
                    float* dbeta, cudaStream_t stream);

}  // namespace cu3d::cuda
