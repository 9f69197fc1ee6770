#include "layers/norm.h"

#include "engine/dist/sync_batch_norm.h"

namespace cu3d {

LayerNorm::LayerNorm(int channels, LayerNormVariant variant, double eps)
    : variant_(variant), eps_(eps) {
  CU3D_CHECK(channels > 0, "LayerNorm: channels = {} must be positive", channels);
  gamma_ = register_parameter("gamma", Tensor::full({channels}, 1.0));
  beta_ = register_parameter("beta", Tensor::zeros({channels}));
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, gamma_, beta_, eps_, variant_);
}

std::string LayerNorm::describe() const {
  const char* over = variant_ == LayerNormVariant::per_sample ? "per sample" : "per position";
  return fmt::format("LayerNorm({}, {}, eps={})", gamma_.size(0), over, eps_);
}

BatchNorm::BatchNorm(int channels, double momentum, double eps) : momentum_(momentum), eps_(eps) {
  CU3D_CHECK(channels > 0, "BatchNorm: channels = {} must be positive", channels);
  CU3D_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm: momentum = {} must be in [0, 1]",
             momentum);
  gamma_ = register_parameter("gamma", Tensor::full({channels}, 1.0));
  beta_ = register_parameter("beta", Tensor::zeros({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::full({channels}, 1.0));
}

Tensor BatchNorm::forward(const Tensor& x) {
  if (sync_ != nullptr && training())
    return dist::sync_batch_norm(x, gamma_, beta_, running_mean_, running_var_, momentum_, eps_,
                                 *sync_);
  return batch_norm(x, gamma_, beta_, running_mean_, running_var_, training(), momentum_, eps_);
}

std::string BatchNorm::describe() const {
  return fmt::format("BatchNorm({}, momentum={}, eps={})", gamma_.size(0), momentum_, eps_);
}

}  // namespace cu3d
