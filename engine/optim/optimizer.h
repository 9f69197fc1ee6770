// Optimizers over a list of named parameters (leaf f32/f64 tensors that require gradients),
// with PyTorch's update rules (kernels/cpu/optimizer.h). A step updates every parameter that
// has a gradient and skips the others. CPU only so far.
//
// State tensors (momentum buffers, Adam moments and the step count) exist from construction
// and are exposed by name, "<parameter>.<PyTorch state key>" and "step". They are the live
// tensors: a checkpoint saves them, and restoring is Tensor::copy_from into each of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace cu3d {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; increments steps().
  void step();
  // Drops every parameter's gradient (the next backward starts from zero).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // e.g. from an LrSchedule before each step
  int64_t steps() const;   // updates taken so far

  const NamedTensors& parameters() const { return params_; }
  virtual NamedTensors state() const = 0;

 protected:
  // `op` names the optimizer in error messages.
  Optimizer(const char* op, NamedTensors params, double lr);
  // Applies one update to params_[index] with its gradient; steps() already counts this step.
  virtual void update(std::size_t index, const Tensor& param, const Tensor& grad) = 0;
  // Called once after every parameter's update (e.g. to launch batched device work).
  virtual void finish_step() {}
  // One zero tensor like each parameter.
  std::vector<Tensor> zeros_like_params() const;
  // "<parameter>.<key>" for each parameter, paired with `tensors`, then "step".
  NamedTensors named_state(
      const std::vector<std::pair<std::string, std::vector<Tensor>>>& per_param) const;

  const char* op_;
  NamedTensors params_;
  double lr_;
  Tensor step_;  // i64, shape []
};

// Names parameters without names "0", "1", ... in order.
NamedTensors name_by_index(const std::vector<Tensor>& params);

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;  // L2, added to the gradient
  bool nesterov = false;
};

// torch.optim.SGD (dampening 0). State: "<p>.momentum_buffer" when momentum != 0.
class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, SgdOptions options);
  SGD(const std::vector<Tensor>& params, SgdOptions options)
      : SGD(name_by_index(params), options) {}
  NamedTensors state() const override;
  const SgdOptions& options() const { return options_; }

 private:
  void update(std::size_t index, const Tensor& param, const Tensor& grad) override;
  SgdOptions options_;
  std::vector<Tensor> momentum_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  // false: Adam with L2 (decay added to the gradient); true: AdamW (decoupled decay).
  bool decoupled = false;
};

// torch.optim.Adam, or torch.optim.AdamW with `decoupled`. State: "<p>.exp_avg",
// "<p>.exp_avg_sq".
class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, AdamOptions options);
  Adam(const std::vector<Tensor>& params, AdamOptions options)
      : Adam(name_by_index(params), options) {}
  NamedTensors state() const override;
  const AdamOptions& options() const { return options_; }

 private:
  void update(std::size_t index, const Tensor& param, const Tensor& grad) override;
  void finish_step() override;
  AdamOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  // CUDA parameters updated this step, applied together by one multi-tensor launch.
  std::vector<std::size_t> device_updates_;
};

}  // namespace cu3d
