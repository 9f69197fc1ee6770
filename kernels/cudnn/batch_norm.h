// cuDNN fallback for batch normalization: the functions of kernels/cuda/batch_norm.cuh that
// cuDNN has (per-channel statistics over the rows of a channels-last (rows, c) fp32 array in
// device memory), through cudnnBatchNormalization* in CUDNN_BATCHNORM_SPATIAL mode on the array
// described as (rows, c, 1, 1). cuDNN saves the same statistics (the batch mean and
// rstd = 1/sqrt(var + eps), var biased) and updates the running ones by PyTorch's convention
// (momentum weights the batch's; the running variance is the unbiased one).
//
// Limits: eps at least CUDNN_BN_MIN_EPSILON (1e-5); the evaluation forward writes y only (cuDNN's
// inference call saves no statistics, so an evaluation-mode backward, which reads them, runs on
// cu3d), and the backward takes batch statistics only.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cpu/batch_norm.h"

namespace cu3d::cudnn {

using cpu::BatchNormShape;

// False where cuDNN refuses the shape or eps.
bool batch_norm_supported(const BatchNormShape& s, float eps);

// running_mean and running_var both null (no update) or both set.
void batch_norm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma,
                          const float* beta, float eps, float momentum, float* y, float* mean,
                          float* rstd, float* running_mean, float* running_var,
                          cudaStream_t stream);
void batch_norm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma,
                         const float* beta, const float* running_mean, const float* running_var,
                         float eps, float* y, cudaStream_t stream);
// The backward of the training forward with the same eps, from its saved mean and rstd.
void batch_norm_bwd(const BatchNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, float eps, float* dx, float* dgamma,
                    float* dbeta, cudaStream_t stream);

}  // namespace cu3d::cudnn
