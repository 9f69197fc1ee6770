#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/optim/optimizer.h"
#include "kernels/cpu/optimizer.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/optimizer.cuh"
#endif

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
  if (param.device().is_cuda()) {
    device_updates_.push_back(index);
    return;
  }
  dispatch_float(param.dtype(), op_, [&]<typename T>() {
    cpu::adam_step<T>(param.numel(), param.data<T>(), grad.data<T>(), exp_avg_[index].data<T>(),
                      exp_avg_sq_[index].data<T>(), lr_, options_.beta1, options_.beta2,
                      options_.eps, options_.weight_decay, options_.decoupled, steps());
  });
}

// One launch updates every CUDA parameter (C3D has 22 tensors, most of them small biases).
void Adam::finish_step() {
  if (device_updates_.empty()) return;
#ifdef CU3D_CUDA
  std::vector<cuda::AdamTensor> tensors;
  for (std::size_t i : device_updates_) {
    const Tensor& p = params_[i].second;
    tensors.push_back({p.data<float>(), p.grad().data<float>(), exp_avg_[i].data<float>(),
                       exp_avg_sq_[i].data<float>(), p.numel()});
  }
  device_updates_.clear();
  const cuda::AdamConfig config{lr_,          options_.beta1,        options_.beta2,
                                options_.eps, options_.weight_decay, options_.decoupled};
  cuda::adam_step(tensors, config, steps(), compute_stream());
#else
  throw_no_cuda(op_);
#endif
}

}  // namespace cu3d
