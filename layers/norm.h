// Normalization layers over the last (channel) axis of a channels-last activation, each with a
// per-channel scale `gamma` (ones) and offset `beta` (zeros), as PyTorch and Keras start them.
#pragma once

#include "engine/dist/communicator.h"
#include "engine/ops/norm.h"
#include "layers/module.h"

namespace cu3d {

// LayerNormVariant::per_sample normalizes each sample over (D,H,W,C), the TensorFlow C3D's
// layer norm; per_position normalizes each position over C, as torch.nn.LayerNorm(c).
class LayerNorm : public Module {
 public:
  LayerNorm(int channels, LayerNormVariant variant, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  const Tensor& gamma() const { return gamma_; }
  const Tensor& beta() const { return beta_; }
  double eps() const { return eps_; }
  LayerNormVariant variant() const { return variant_; }

 private:
  LayerNormVariant variant_;
  double eps_;
  Tensor gamma_, beta_;
};

// Training normalizes with the batch statistics and updates the buffers `running_mean` (zeros)
// and `running_var` (ones); evaluation normalizes with the buffers. `momentum` is PyTorch's
// (Keras's BatchNormalization(momentum=0.99, epsilon=1e-3) is momentum 0.01, eps 1e-3 here).
class BatchNorm : public Module {
 public:
  BatchNorm(int channels, double momentum = 0.1, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  // Data parallel: batch statistics over all ranks of `comm` in training (engine/dist/
  // sync_batch_norm.h); null (the default) for this process's batch alone.
  void set_sync(dist::Communicator* comm) { sync_ = comm; }

 private:
  double momentum_, eps_;
  dist::Communicator* sync_ = nullptr;
  Tensor gamma_, beta_, running_mean_, running_var_;
};

}  // namespace cu3d
