// Convolution layers. Weights are (k, kd, kh, kw, c) (conv2d: (k, kh, kw, c)), bias (k).
#pragma once

#include "engine/ops/conv.h"
#include "engine/rng.h"
#include "layers/module.h"

namespace cu3d {

// Which framework's default initialisation a layer copies (layers/init.h).
enum class InitStyle { keras, pytorch };

class Conv3d : public Module {
 public:
  Conv3d(int in_channels, int out_channels, Dims3 kernel, Conv3dParams params, InitStyle init,
         Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Conv3dParams& params() const { return params_; }

 private:
  Conv3dParams params_;
  Tensor weight_, bias_;
};

class Conv2d : public Module {
 public:
  Conv2d(int in_channels, int out_channels, Dims2 kernel, Conv2dParams params, InitStyle init,
         Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  Conv2dParams params_;
  Tensor weight_, bias_;
};

}  // namespace cu3d
