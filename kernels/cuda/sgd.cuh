// SGD with momentum on the GPU: the CUDA twin of cpu::sgd_step (kernels/cpu/optimizer.h,
// PyTorch semantics), one flat fp32 parameter array per call.
// Cost: memory-bound, 20 bytes per element (read param, grad, buf; write param, buf).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cu3d::cuda {

// momentum_buf may be null when momentum == 0.
void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, double lr,
              double momentum, double weight_decay, bool nesterov, cudaStream_t stream);

}  // namespace cu3d::cuda
