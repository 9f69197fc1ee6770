#include "engine/ops/loss.h"

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "kernels/cpu/softmax_xent.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/softmax_xent.cuh"
#endif

namespace cu3d {

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  const char* op = "softmax_cross_entropy";
  check_dims(op, "logits", logits, 2);
  check_defined(op, "labels", labels);
  check_compute_dtype(op, logits);
  CU3D_CHECK(labels.defined() && labels.device() == logits.device(),
             "{}: labels {} must be on the device of logits {}", op, labels.str(), logits.str());
  CU3D_CHECK(logits.numel() > 0, "{}: logits {} are empty", op, logits.str());
  CU3D_CHECK(labels.dtype() == DType::i32 && labels.shape() == Shape{logits.size(0)},
             "{}: labels must be i32[{}] (one class index per row of logits {}), got {}", op,
             logits.size(0), logits.str(), labels.str());
  const cpu::SoftmaxXentShape s{logits.size(0), int(logits.size(1))};
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  const Tensor probs = Tensor::empty_like(logits);
  // On CUDA an out-of-range label cannot throw from the kernel: it makes the loss NaN, which
  // the trainer's non-finite check reports.
  if (logits.device().is_cuda())
    CU3D_CUDA_CALL(
        op, cuda::softmax_xent_fwd(s, logits.data<float>(), labels.data<int32_t>(),
                                   probs.data<float>(), loss.data<float>(), compute_stream()));
  else
    dispatch_float(logits.dtype(), op, [&]<typename T>() {
      cpu::softmax_xent_fwd<T>(s, logits.data<T>(), labels.data<int32_t>(), probs.data<T>(),
                               loss.data<T>());
    });
  if (autograd::needs_grad({logits})) {
    autograd::record(op, {logits}, {loss}, [op, s, probs, labels](const std::vector<Tensor>& g) {
      Tensor dlogits = Tensor::empty_like(probs);
      if (probs.device().is_cuda()) {
        CU3D_CUDA_CALL(op, cuda::softmax_xent_bwd(s, probs.data<float>(), labels.data<int32_t>(),
                                                  g[0].data<float>(), dlogits.data<float>(),
                                                  compute_stream()));
        return std::vector<Tensor>{dlogits};
      }
      dispatch_float(probs.dtype(), op, [&]<typename T>() {
        cpu::softmax_xent_bwd<T>(s, probs.data<T>(), labels.data<int32_t>(), g[0].data<T>(),
                                 dlogits.data<T>());
      });
      return std::vector<Tensor>{dlogits};
    });
  }
  return loss;
}

}  // namespace cu3d
