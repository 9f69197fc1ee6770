#include "engine/optim/optimizer.h"

#include <cmath>

#include "engine/dispatch.h"

namespace cu3d {

Optimizer::Optimizer(const char* op, NamedTensors params, double lr)
    : op_(op), params_(std::move(params)), lr_(0), step_(Tensor::zeros({}, DType::i64)) {
  for (const auto& [name, p] : params_) {
    check_defined(op_, name.c_str(), p);
    check_compute_dtype(op_, p);
    CU3D_CHECK(p.is_leaf() && p.requires_grad(),
               "{}: parameter '{}' ({}) must be a leaf tensor that requires a gradient "
               "(set_requires_grad(true))",
               op_, name, p.str());
  }
  set_lr(lr);
}

void Optimizer::set_lr(double lr) {
  CU3D_CHECK(std::isfinite(lr) && lr >= 0, "{}: learning rate {} must be finite and >= 0", op_, lr);
  lr_ = lr;
}

int64_t Optimizer::steps() const {
  return *step_.data<int64_t>();
}

void Optimizer::step() {
  ++*step_.data<int64_t>();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    CU3D_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
               "{}: gradient {} of parameter '{}' does not match the parameter {}", op_, g.str(),
               params_[i].first, p.str());
    update(i, p, g);
  }
  finish_step();
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_)
    p.zero_grad();
}

std::vector<Tensor> Optimizer::zeros_like_params() const {
  std::vector<Tensor> out;
  for (const auto& [name, p] : params_)
    out.push_back(Tensor::zeros_like(p));
  return out;
}

NamedTensors Optimizer::named_state(
    const std::vector<std::pair<std::string, std::vector<Tensor>>>& per_param) const {
  NamedTensors out;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    for (const auto& [key, tensors] : per_param) {
      out.emplace_back(params_[i].first + "." + key, tensors[i]);
    }
  }
  out.emplace_back("step", step_);
  return out;
}

NamedTensors name_by_index(const std::vector<Tensor>& params) {
  NamedTensors named;
  for (std::size_t i = 0; i < params.size(); ++i)
    named.emplace_back(std::to_string(i), params[i]);
  return named;
}

}  // namespace cu3d
