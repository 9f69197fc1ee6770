#include "engine/ops/activation.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/softmax.h"

namespace cu3d {
namespace {

void check_input(const char* op, const Tensor& x) {
  check_defined(op, "x", x);
  check_cpu(op, x);
}

// Records y = op(x) with a backward that maps (y, dy) to dx through `kernel_bwd`, called as
// kernel_bwd.template operator()<T>(y, dy, dx) on typed pointers.
template <typename KernelBwd>
void record_from_output(const char* op, const Tensor& x, const Tensor& y, KernelBwd kernel_bwd) {
  if (!autograd::needs_grad({x})) return;
  autograd::record(op, {x}, {y}, [op, y, kernel_bwd](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty_like(y);
    dispatch_float(y.dtype(), op, [&]<typename T>() {
      kernel_bwd.template operator()<T>(y.data<T>(), g[0].data<T>(), dx.data<T>());
    });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace

Tensor relu(const Tensor& x) {
  check_input("relu", x);
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "relu",
                 [&]<typename T>() { cpu::relu_fwd<T>(n, x.data<T>(), y.data<T>()); });
  record_from_output("relu", x, y, [n]<typename T>(const T* out, const T* dy, T* dx) {
    cpu::relu_bwd<T>(n, out, dy, dx);
  });
  return y;
}

Tensor leaky_relu(const Tensor& x, double alpha) {
  check_input("leaky_relu", x);
  CU3D_CHECK(alpha >= 0,
             "leaky_relu: alpha = {} must not be negative (the backward reads the output's sign)",
             alpha);
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "leaky_relu", [&]<typename T>() {
    cpu::leaky_relu_fwd<T>(n, x.data<T>(), T(alpha), y.data<T>());
  });
  record_from_output("leaky_relu", x, y, [n, alpha]<typename T>(const T* out, const T* dy, T* dx) {
    cpu::leaky_relu_bwd<T>(n, out, T(alpha), dy, dx);
  });
  return y;
}

Tensor sigmoid(const Tensor& x) {
  check_input("sigmoid", x);
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "sigmoid",
                 [&]<typename T>() { cpu::sigmoid_fwd<T>(n, x.data<T>(), y.data<T>()); });
  record_from_output("sigmoid", x, y, [n]<typename T>(const T* out, const T* dy, T* dx) {
    cpu::sigmoid_bwd<T>(n, out, dy, dx);
  });
  return y;
}

Tensor softmax(const Tensor& x) {
  check_input("softmax", x);
  CU3D_CHECK(x.dim() >= 1 && x.numel() > 0,
             "softmax: x must be non-empty with at least one axis, got {}", x.str());
  const cpu::SoftmaxShape s{x.numel() / x.size(-1), int(x.size(-1))};
  Tensor y = Tensor::empty_like(x);
  dispatch_float(x.dtype(), "softmax",
                 [&]<typename T>() { cpu::softmax_fwd<T>(s, x.data<T>(), y.data<T>()); });
  record_from_output("softmax", x, y, [s]<typename T>(const T* out, const T* dy, T* dx) {
    cpu::softmax_bwd<T>(s, out, dy, dx);
  });
  return y;
}

}  // namespace cu3d
