// Module: the base of every layer and model. A module owns named parameters (trainable tensors),
// named buffers (state such as batch-norm running statistics) and named child modules; names
// join with dots ("conv3a.weight") as in PyTorch state dicts, which is also how checkpoints
// store them. `forward` maps one tensor to one tensor; models are Sequentials of layers.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace cu3d {

class Module;
// A module's children: (name, module) in registration order.
using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  // A short description for summaries, e.g. "Conv3d(3->64, k=3x3x3, s=1, same)".
  virtual std::string describe() const = 0;

  Tensor operator()(const Tensor& x) { return forward(x); }

  NamedTensors named_parameters() const;  // recursive, dotted names, registration order
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  const NamedModules& children() const { return children_; }
  int64_t parameter_count() const;

  // Training mode (dropout active, batch norm uses batch statistics) or evaluation mode.
  void train(bool training = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  void zero_grad();
  // Moves every parameter and buffer to `device` in place.
  void to(Device device);

 protected:
  // Registers a leaf tensor that requires a gradient.
  Tensor& register_parameter(std::string name, Tensor value);
  Tensor& register_buffer(std::string name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  NamedModules children_;
  bool training_ = true;
};

// Runs its children in order. A Conv3d followed by a ReLU, or by a LayerNorm and a ReLU (and a
// MaxPool3d), runs as one fused op (layers/conv_block.h) unless fusion is off; each child, or
// fused run of children, inside a ProfileScope named after it ("conv1a+relu1a+pool1").
class Sequential : public Module {
 public:
  template <typename M>
  std::shared_ptr<M> add(std::string name, std::shared_ptr<M> module) {
    return register_module(std::move(name), std::move(module));
  }
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "Sequential"; }
};

}  // namespace cu3d
