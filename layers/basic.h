// The parameter-free layers and Dense: pooling, activations, flatten, dropout.
#pragma once

#include "engine/ops/pool.h"
#include "engine/rng.h"
#include "layers/conv.h"
#include "layers/module.h"

namespace cu3d {

class MaxPool3d : public Module {
 public:
  explicit MaxPool3d(Pool3dParams params) : params_(params) {}
  Tensor forward(const Tensor& x) override { return max_pool3d(x, params_); }
  std::string describe() const override;
  const Pool3dParams& params() const { return params_; }

 private:
  Pool3dParams params_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pool2dParams params) : params_(params) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, params_); }
  std::string describe() const override;

 private:
  Pool2dParams params_;
};

// x (m, in) -> (m, out); weight (out, in), bias (out).
class Dense : public Module {
 public:
  Dense(int in_features, int out_features, InitStyle init, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  Tensor weight_, bias_;
};

enum class ActivationKind { relu, leaky_relu, sigmoid, softmax };

// Softmax runs over the last axis: the channels of a channels-last activation.
class Activation : public Module {
 public:
  explicit Activation(ActivationKind kind, double alpha = 0.3) : kind_(kind), alpha_(alpha) {}
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  ActivationKind kind() const { return kind_; }

 private:
  ActivationKind kind_;
  double alpha_;  // leaky ReLU's slope for x < 0 (Keras's LeakyReLU default 0.3)
};

// (n, ...) -> (n, prod(...)), a view.
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x.flatten(1); }
  std::string describe() const override { return "Flatten"; }
};

// Inverted dropout whose masks come from (seed, call counter), so a resumed run that restores
// the counter draws the same masks.
class Dropout : public Module {
 public:
  Dropout(double rate, uint64_t seed) : rate_(rate), seed_(seed) {}
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return fmt::format("Dropout({})", rate_); }
  uint64_t calls() const { return calls_; }
  void set_calls(uint64_t calls) { calls_ = calls; }
  uint64_t seed() const { return seed_; }
  void set_seed(uint64_t seed) { seed_ = seed; }  // data parallel: each rank its own masks

 private:
  double rate_;
  uint64_t seed_;
  uint64_t calls_ = 0;
};

}  // namespace cu3d
