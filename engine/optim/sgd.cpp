#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/optim/optimizer.h"
#include "kernels/cpu/optimizer.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/sgd.cuh"
#endif

namespace cu3d {

SGD::SGD(NamedTensors params, SgdOptions options)
    : Optimizer("SGD", std::move(params), options.lr), options_(options) {
  CU3D_CHECK(options.momentum >= 0 && options.weight_decay >= 0,
             "SGD: momentum {} and weight decay {} must not be negative", options.momentum,
             options.weight_decay);
  CU3D_CHECK(!options.nesterov || options.momentum > 0,
             "SGD: Nesterov momentum needs momentum > 0");
  if (options.momentum != 0) momentum_ = zeros_like_params();
}

NamedTensors SGD::state() const {
  if (momentum_.empty()) return named_state({});
  return named_state({{"momentum_buffer", momentum_}});
}

void SGD::update(std::size_t index, const Tensor& param, const Tensor& grad) {
  if (param.device().is_cuda()) {
    CU3D_CUDA_CALL(op_, cuda::sgd_step(param.numel(), param.data<float>(), grad.data<float>(),
                                       momentum_.empty() ? nullptr : momentum_[index].data<float>(),
                                       lr_, options_.momentum, options_.weight_decay,
                                       options_.nesterov, compute_stream()));
    return;
  }
  dispatch_float(param.dtype(), op_, [&]<typename T>() {
    T* buf = momentum_.empty() ? nullptr : momentum_[index].data<T>();
    cpu::sgd_step<T>(param.numel(), param.data<T>(), grad.data<T>(), buf, lr_, options_.momentum,
                     options_.weight_decay, options_.nesterov);
  });
}

}  // namespace cu3d
