// The autograd tape. Each op that runs while gradients are enabled and that has an input which
// requires a gradient appends one entry: its inputs, its outputs, and a closure that maps the
// outputs' gradients to the inputs' gradients (the closure captures whatever it saved).
// `backward(root)` walks the tape in reverse, accumulating gradients; leaf tensors that require
// a gradient (parameters, and inputs marked for activation maximization) keep theirs in
// `Tensor::grad()`. The tape is consumed by backward and is per thread.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace cu3d::autograd {

using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

bool grad_enabled();

// Within its scope nothing is recorded (evaluation, prediction, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when gradients are enabled and any defined input requires a gradient: the op must record.
bool needs_grad(std::initializer_list<Tensor> inputs);

// Appends an entry; marks the outputs as requiring gradients. `backward` returns one gradient
// per input (an undefined Tensor where there is none), each with its input's shape.
void record(std::string op, std::vector<Tensor> inputs, std::vector<Tensor> outputs,
            BackwardFn backward);

// Called by backward with each leaf as soon as its gradient is final (no entry left to run feeds
// it), so that data-parallel training reduces it while the rest of backward runs.
using GradReadyFn = std::function<void(const Tensor& leaf)>;

// Back-propagates from `root`. `grad_root` defaults to 1 for a one-element root; for any other
// root it must be given, with the root's shape. Clears the tape.
void backward(const Tensor& root, const Tensor& grad_root = Tensor(),
              const GradReadyFn& on_grad_ready = {});

std::size_t tape_size();
void clear_tape();  // drops the recorded graph without back-propagating

}  // namespace cu3d::autograd
