#include "layers/basic.h"

#include "engine/ops/activation.h"
#include "engine/ops/dense.h"
#include "engine/ops/dropout.h"
#include "layers/init.h"

namespace cu3d {

std::string MaxPool3d::describe() const {
  const Pool3dParams& p = params_;
  return fmt::format("MaxPool3d(k={}x{}x{}, s={}x{}x{})", p.window.d, p.window.h, p.window.w,
                     p.stride.d, p.stride.h, p.stride.w);
}

std::string MaxPool2d::describe() const {
  const Pool2dParams& p = params_;
  return fmt::format("MaxPool2d(k={}x{}, s={}x{})", p.window.h, p.window.w, p.stride.h, p.stride.w);
}

Dense::Dense(int in_features, int out_features, InitStyle init, Generator& gen) {
  if (init == InitStyle::keras) {
    weight_ = register_parameter("weight", init::glorot_uniform({out_features, in_features},
                                                                in_features, out_features, gen));
    bias_ = register_parameter("bias", Tensor::zeros({out_features}));
    return;
  }
  weight_ = register_parameter(
      "weight", init::pytorch_uniform({out_features, in_features}, in_features, gen));
  bias_ = register_parameter("bias", init::pytorch_uniform({out_features}, in_features, gen));
}

Tensor Dense::forward(const Tensor& x) {
  return dense(x, weight_, bias_);
}

std::string Dense::describe() const {
  return fmt::format("Dense({}->{})", weight_.size(1), weight_.size(0));
}

Tensor Activation::forward(const Tensor& x) {
  switch (kind_) {
    case ActivationKind::relu:
      return relu(x);
    case ActivationKind::leaky_relu:
      return leaky_relu(x, alpha_);
    case ActivationKind::sigmoid:
      return sigmoid(x);
    case ActivationKind::softmax:
      return softmax(x);
  }
  throw Error("Activation: unknown kind");
}

std::string Activation::describe() const {
  switch (kind_) {
    case ActivationKind::relu:
      return "ReLU";
    case ActivationKind::leaky_relu:
      return fmt::format("LeakyReLU({})", alpha_);
    case ActivationKind::sigmoid:
      return "Sigmoid";
    case ActivationKind::softmax:
      return "Softmax(channels)";
  }
  return "?";
}

Tensor Dropout::forward(const Tensor& x) {
  if (!training()) return x;
  return dropout(x, rate_, true, seed_, calls_++);
}

}  // namespace cu3d
