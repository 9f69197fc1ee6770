#include "engine/dispatch.h"
#include "engine/optim/optimizer.h"
#include "kernels/cpu/optimizer.h"

namespace cu3d {

Adam::Adam(NamedTensors params, AdamOptions options)
    : Optimizer(options.decoupled ? "AdamW" : "Adam", std::move(params), options.lr),
      options_(options),
      exp_avg_(zeros_like_params()),
      exp_avg_sq_(zeros_like_params()) {
  CU3D_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
             "{}: betas ({}, {}) must lie in [0, 1)", op_, options.beta1, options.beta2);
  CU3D_CHECK(options.eps > 0 && options.weight_decay >= 0,
             "{}: eps {} must be positive and weight decay {} not negative", op_, options.eps,
             options.weight_decay);
}

NamedTensors Adam::state() const {
  return named_state({{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}});
}

void Adam::update(std::size_t index, const Tensor& param, const Tensor& grad) {
  dispatch_float(param.dtype(), op_, [&]<typename T>() {
    cpu::adam_step<T>(param.numel(), param.data<T>(), grad.data<T>(), exp_avg_[index].data<T>(),
                      exp_avg_sq_[index].data<T>(), lr_, options_.beta1, options_.beta2,
                      options_.eps, options_.weight_decay, options_.decoupled, steps());
  });
}

}  // namespace cu3d
