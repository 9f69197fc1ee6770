// Normalization ops on channels-last tensors (n, ..., c), with per-channel scale gamma (c) and
// offset beta (c). CPU only so far; the kernels are kernels/cpu/layer_norm.h and batch_norm.h.
#pragma once

#include "engine/tensor.h"

namespace cu3d {

enum class LayerNormVariant {
  // Each sample normalized over all its positions and channels (D,H,W,C): the TensorFlow C3D's
  // layer norm.
  per_sample,
  // Each position normalized over its channels only (torch.nn.LayerNorm(c)).
  per_position,
};

// x is (n, ..., c); y has x's shape. Biased variance; rstd = 1 / sqrt(var + eps).
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5,
                  LayerNormVariant variant = LayerNormVariant::per_sample);

// x is (..., c), each channel normalized over all other axes. Training uses the batch
// statistics and updates running_mean/running_var (c) in place in PyTorch's convention:
// running = (1 - momentum) * running + momentum * batch statistic, with the unbiased batch
// variance (Keras's momentum 0.99 is momentum 0.01 here); running statistics may be undefined
// in training (then nothing is updated). Evaluation normalizes with the running statistics,
// which must be defined. Neither running statistic receives a gradient.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);

}  // namespace cu3d
