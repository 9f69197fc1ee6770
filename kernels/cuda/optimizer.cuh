// The multi-tensor Adam/AdamW step on the GPU: every parameter tensor of a model in one launch
// (per 32 tensors), the CUDA twin of cpu::adam_step applied to each tensor (PyTorch
// semantics; see kernels/cpu/optimizer.h). One launch instead of one per tensor matters
// because C3D has 22 parameter tensors, most tiny (biases), each of which would otherwise cost
// a launch of a few microseconds.
// Cost: memory-bound, 28 bytes per element (read param, grad, m, v; write param, m, v).
#pragma once

#include <cstdint>
#include <vector>

#include <cuda_runtime.h>

namespace cu3d::cuda {

// One parameter tensor and its state, all fp32 device arrays of n elements.
struct AdamTensor {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t n;
};

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;  // AdamW
};

// Applies update number `step` (counting from 1) to every tensor.
void adam_step(const std::vector<AdamTensor>& tensors, const AdamConfig& config, int64_t step,
               cudaStream_t stream);

}  // namespace cu3d::cuda
