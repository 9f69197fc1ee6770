#include "layers/conv.h"

#include "layers/init.h"

namespace cu3d {
namespace {

const char* padding_name(Padding padding) {
  switch (padding) {
    case Padding::same:
      return "same";
    case Padding::valid:
      return "valid";
    case Padding::explicit_:
      return "explicit";
  }
  return "?";
}

// Keras: glorot-uniform kernel, zero bias. PyTorch: U(±1/sqrt(fan_in)) for both.
std::pair<Tensor, Tensor> init_conv(const Shape& weight_shape, int64_t fan_in, int64_t fan_out,
                                    InitStyle init, Generator& gen) {
  const int64_t k = weight_shape[0];
  if (init == InitStyle::keras)
    return {init::glorot_uniform(weight_shape, fan_in, fan_out, gen), Tensor::zeros({k})};
  Tensor weight = init::pytorch_uniform(weight_shape, fan_in, gen);
  return {weight, init::pytorch_uniform({k}, fan_in, gen)};
}

}  // namespace

Conv3d::Conv3d(int in_channels, int out_channels, Dims3 kernel, Conv3dParams params, InitStyle init,
               Generator& gen)
    : params_(params) {
  const int64_t taps = int64_t(kernel.d) * kernel.h * kernel.w;
  auto [w, b] = init_conv({out_channels, kernel.d, kernel.h, kernel.w, in_channels},
                          taps * in_channels, taps * out_channels, init, gen);
  weight_ = register_parameter("weight", w);
  bias_ = register_parameter("bias", b);
}

Tensor Conv3d::forward(const Tensor& x) {
  return conv3d(x, weight_, bias_, params_);
}

std::string Conv3d::describe() const {
  const Shape& w = weight_.shape();
  return fmt::format("Conv3d({}->{}, k={}x{}x{}, s={}x{}x{}, {})", w[4], w[0], w[1], w[2], w[3],
                     params_.stride.d, params_.stride.h, params_.stride.w,
                     padding_name(params_.padding));
}

Conv2d::Conv2d(int in_channels, int out_channels, Dims2 kernel, Conv2dParams params, InitStyle init,
               Generator& gen)
    : params_(params) {
  const int64_t taps = int64_t(kernel.h) * kernel.w;
  auto [w, b] = init_conv({out_channels, kernel.h, kernel.w, in_channels}, taps * in_channels,
                          taps * out_channels, init, gen);
  weight_ = register_parameter("weight", w);
  bias_ = register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight_, bias_, params_);
}

std::string Conv2d::describe() const {
  const Shape& w = weight_.shape();
  return fmt::format("Conv2d({}->{}, k={}x{}, s={}x{}, {})", w[3], w[0], w[1], w[2],
                     params_.stride.h, params_.stride.w, padding_name(params_.padding));
}

}  // namespace cu3d
