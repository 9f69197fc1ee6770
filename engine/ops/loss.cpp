#include "engine/ops/loss.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/softmax_xent.h"

namespace cu3d {

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  const char* op = "softmax_cross_entropy";
  check_dims(op, "logits", logits, 2);
  check_defined(op, "labels", labels);
  check_cpu(op, logits);
  check_cpu(op, labels);
  CU3D_CHECK(logits.numel() > 0, "{}: logits {} are empty", op, logits.str());
  CU3D_CHECK(labels.dtype() == DType::i32 && labels.shape() == Shape{logits.size(0)},
             "{}: labels must be i32[{}] (one class index per row of logits {}), got {}", op,
             logits.size(0), logits.str(), labels.str());
  const cpu::SoftmaxXentShape s{logits.size(0), int(logits.size(1))};
  Tensor loss = Tensor::empty({}, logits.dtype());
  const Tensor probs = Tensor::empty_like(logits);
  dispatch_float(logits.dtype(), op, [&]<typename T>() {
    cpu::softmax_xent_fwd<T>(s, logits.data<T>(), labels.data<int32_t>(), probs.data<T>(),
                             loss.data<T>());
  });
  if (autograd::needs_grad({logits})) {
    autograd::record(op, {logits}, {loss}, [op, s, probs, labels](const std::vector<Tensor>& g) {
      Tensor dlogits = Tensor::empty_like(probs);
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
