#include "engine/autograd.h"

#include <unordered_map>

#include "engine/numerics.h"
#include "engine/ops/elementwise.h"
#include "engine/profile_scope.h"

namespace cu3d::autograd {
namespace {

struct Entry {
  std::string op;
  std::string scope;  // the ProfileScope it was recorded in ("conv3a"), for the backward range
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  BackwardFn backward;
};

struct Tape {
  std::vector<Entry> entries;
  // Tensors record the generation that produced them; clearing the tape starts a new one, so a
  // tensor from a consumed tape is recognised (backward called twice).
  uint64_t generation = 1;
  bool grad_enabled = true;

  void clear() {
    entries.clear();
    ++generation;
  }
};

Tape& tape() {
  thread_local Tape instance;
  return instance;
}

// A pending gradient; `owned` once it is a private copy that may be accumulated into in place
// (a backward function may hand the same tensor to several inputs).
struct PendingGrad {
  Tensor grad;
  bool owned = false;
};
using GradMap = std::unordered_map<const TensorImpl*, PendingGrad>;

// Adds `grad` to the gradient of `input`: into Tensor::grad() for a leaf, else into `pending`
// for the entry that produced it.
void deliver(const Entry& entry, const Tensor& input, const Tensor& grad, GradMap& pending) {
  CU3D_CHECK(grad.shape() == input.shape() && grad.dtype() == input.dtype(),
             "backward of {}: gradient {} does not match its input {}", entry.op, grad.str(),
             input.str());
  if (input.is_leaf()) {
    if (!input.grad().defined())
      Tensor(input).set_grad(grad.clone());
    else
      accumulate_(input.grad(), grad);
    return;
  }
  auto [it, inserted] = pending.try_emplace(input.impl(), PendingGrad{grad, false});
  if (inserted) return;
  if (!it->second.owned) it->second = {it->second.grad.clone(), true};
  accumulate_(it->second.grad, grad);
}

void run_entry(const Entry& entry, GradMap& pending) {
  std::vector<Tensor> grad_outputs;
  bool any = false;
  for (const Tensor& out : entry.outputs) {
    auto it = pending.find(out.impl());
    if (it != pending.end()) {
      grad_outputs.push_back(it->second.grad);
      pending.erase(it);
      any = true;
    } else {
      grad_outputs.push_back(Tensor());
    }
  }
  if (!any) return;
  for (std::size_t i = 0; i < grad_outputs.size(); ++i)
    if (!grad_outputs[i].defined()) grad_outputs[i] = Tensor::zeros_like(entry.outputs[i]);

  const ProfileRange range((entry.scope.empty() ? entry.op : entry.scope) + "/bwd");
  const std::vector<Tensor> grad_inputs = entry.backward(grad_outputs);
  CU3D_CHECK(grad_inputs.size() == entry.inputs.size(),
             "backward of {} returned {} gradients for {} inputs", entry.op, grad_inputs.size(),
             entry.inputs.size());
  for (std::size_t i = 0; i < grad_inputs.size(); ++i) {
    const Tensor& input = entry.inputs[i];
    if (!input.defined() || !input.requires_grad() || !grad_inputs[i].defined()) continue;
    if (check_numerics())
      check_finite(grad_inputs[i], fmt::format("backward: the gradient of input {} of {} in layer "
                                               "'{}'",
                                               i, entry.op, entry.scope));
    deliver(entry, input, grad_inputs[i], pending);
  }
}

// For each entry, the leaves whose last contribution it makes (entries run in reverse, so that is
// the first entry in tape order that takes the leaf as an input).
std::vector<std::vector<Tensor>> leaves_final_after(const std::vector<Entry>& entries) {
  std::vector<std::vector<Tensor>> final_after(entries.size());
  std::unordered_map<const TensorImpl*, bool> seen;
  for (std::size_t i = 0; i < entries.size(); ++i)
    for (const Tensor& input : entries[i].inputs)
      if (input.defined() && input.is_leaf() && input.requires_grad() &&
          seen.emplace(input.impl(), true).second)
        final_after[i].push_back(input);
  return final_after;
}

}  // namespace

bool grad_enabled() {
  return tape().grad_enabled;
}

NoGradGuard::NoGradGuard() : previous_(tape().grad_enabled) {
  tape().grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  tape().grad_enabled = previous_;
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(std::string op, std::vector<Tensor> inputs, std::vector<Tensor> outputs,
            BackwardFn backward) {
  Tape& t = tape();
  for (Tensor& out : outputs) {
    const auto impl = out.impl_ptr();
    impl->requires_grad = true;
    impl->tape_generation = t.generation;
  }
  t.entries.push_back({std::move(op), ProfileScope::current(), std::move(inputs),
                       std::move(outputs), std::move(backward)});
}

void backward(const Tensor& root, const Tensor& grad_root, const GradReadyFn& on_grad_ready) {
  CU3D_CHECK(root.defined(), "backward: the root tensor is undefined");
  CU3D_CHECK(root.requires_grad(),
             "backward on {}: it needs no gradient (no input of the ops that produced it requires "
             "one; mark parameters with set_requires_grad(true))",
             root.str());
  Tape& t = tape();
  CU3D_CHECK(root.is_leaf() || root.impl()->tape_generation == t.generation,
             "backward on {} called twice: the first call consumed the tape; run the forward pass "
             "again",
             root.str());
  Tensor seed = grad_root;
  if (!seed.defined()) {
    CU3D_CHECK(root.numel() == 1,
               "backward on {}: a gradient for the root is needed unless it has one element",
               root.str());
    seed = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  }
  CU3D_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype(),
             "backward: root gradient {} does not match root {}", seed.str(), root.str());

  GradMap pending;
  if (root.is_leaf()) {
    deliver(Entry{"backward", "", {}, {}, {}}, root, seed, pending);
    if (on_grad_ready) on_grad_ready(root);
    return;
  }
  pending.emplace(root.impl(), PendingGrad{seed, false});
  // Entries run in reverse; clear the tape even if a backward function throws.
  std::vector<Entry> entries = std::move(t.entries);
  t.clear();
  const std::vector<std::vector<Tensor>> final_after =
      on_grad_ready ? leaves_final_after(entries) : std::vector<std::vector<Tensor>>();
  for (std::size_t i = entries.size(); i-- > 0;) {
    run_entry(entries[i], pending);
    entries[i] = Entry{};  // free the saved tensors as soon as they are used
    if (!on_grad_ready) continue;
    for (const Tensor& leaf : final_after[i])
      if (leaf.grad().defined()) on_grad_ready(leaf);
  }
}

std::size_t tape_size() {
  return tape().entries.size();
}
void clear_tape() {
  tape().clear();
}

}  // namespace cu3d::autograd
