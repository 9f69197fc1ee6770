#include "engine/ops/activation.h"

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/ops/detail.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/softmax.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/softmax.cuh"
#include "kernels/cudnn/activation.h"
#include "kernels/cudnn/softmax.h"
#endif

namespace cu3d {
namespace {

void check_input(const char* op, const Tensor& x) {
  check_defined(op, "x", x);
  check_compute_dtype(op, x);
}

enum class Kind { relu, leaky_relu, sigmoid };

const char* name(Kind kind) {
  switch (kind) {
    case Kind::relu:
      return "relu";
    case Kind::leaky_relu:
      return "leaky_relu";
    case Kind::sigmoid:
      return "sigmoid";
  }
  return "?";
}

#ifdef CU3D_CUDA
// An activation's call as the backend's auto selection names it.
std::string describe(Kind kind, const char* pass, int64_t n) {
  return fmt::format("{} {} n={}", name(kind), pass, n);
}

// y = f(x) on the backend compute_options() asks for (cuDNN has ReLU and sigmoid). Re-runnable
// for auto's timing: y may be x only for ReLU, which is idempotent.
void activation_fwd_device(Kind kind, float alpha, int64_t n, const float* x, float* y) {
  cudaStream_t stream = compute_stream();
  if (kind == Kind::leaky_relu) return cuda::leaky_relu_fwd(n, x, alpha, y, stream);
  const bool relu = kind == Kind::relu;
  run_on_backend(
      BackendOp::activation, [&] { return describe(kind, "fwd", n); }, true,
      [&] { relu ? cuda::relu_fwd(n, x, y, stream) : cuda::sigmoid_fwd(n, x, y, stream); },
      [&] { relu ? cudnn::relu_fwd(n, x, y, stream) : cudnn::sigmoid_fwd(n, x, y, stream); });
}

void activation_bwd_device(Kind kind, float alpha, int64_t n, const float* y, const float* dy,
                           float* dx) {
  cudaStream_t stream = compute_stream();
  if (kind == Kind::leaky_relu) return cuda::leaky_relu_bwd(n, y, alpha, dy, dx, stream);
  const bool relu = kind == Kind::relu;
  run_on_backend(
      BackendOp::activation, [&] { return describe(kind, "bwd", n); }, true,
      [&] {
        relu ? cuda::relu_bwd(n, y, dy, dx, stream) : cuda::sigmoid_bwd(n, y, dy, dx, stream);
      },
      [&] {
        relu ? cudnn::relu_bwd(n, y, dy, dx, stream) : cudnn::sigmoid_bwd(n, y, dy, dx, stream);
      });
}
#endif

// y = f(x) on the tensors' device.
void activation_fwd(Kind kind, double alpha, const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL(name(kind),
                   activation_fwd_device(kind, float(alpha), n, x.data<float>(), y.data<float>()));
    return;
  }
  dispatch_float(x.dtype(), name(kind), [&]<typename T>() {
    switch (kind) {
      case Kind::relu:
        return cpu::relu_fwd<T>(n, x.data<T>(), y.data<T>());
      case Kind::leaky_relu:
        return cpu::leaky_relu_fwd<T>(n, x.data<T>(), T(alpha), y.data<T>());
      case Kind::sigmoid:
        return cpu::sigmoid_fwd<T>(n, x.data<T>(), y.data<T>());
    }
  });
}

// dx from the forward output y and dy (every activation here can be differentiated from y).
void activation_bwd(Kind kind, double alpha, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const int64_t n = y.numel();
  if (y.device().is_cuda()) {
    CU3D_CUDA_CALL(name(kind), activation_bwd_device(kind, float(alpha), n, y.data<float>(),
                                                     dy.data<float>(), dx.data<float>()));
    return;
  }
  dispatch_float(y.dtype(), name(kind), [&]<typename T>() {
    const T *out = y.data<T>(), *g = dy.data<T>();
    T* d = dx.data<T>();
    switch (kind) {
      case Kind::relu:
        return cpu::relu_bwd<T>(n, out, g, d);
      case Kind::leaky_relu:
        return cpu::leaky_relu_bwd<T>(n, out, T(alpha), g, d);
      case Kind::sigmoid:
        return cpu::sigmoid_bwd<T>(n, out, g, d);
    }
  });
}

Tensor activation(Kind kind, const Tensor& x, double alpha = 0) {
  check_input(name(kind), x);
  Tensor y = Tensor::empty_like(x);
  activation_fwd(kind, alpha, x, y);
  if (!autograd::needs_grad({x})) return y;
  autograd::record(name(kind), {x}, {y}, [kind, alpha, y](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty_like(y);
    activation_bwd(kind, alpha, y, g[0], dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

#ifdef CU3D_CUDA
std::string describe_softmax(const char* pass, const cpu::SoftmaxShape& s) {
  return fmt::format("softmax {} {} rows x {}", pass, s.rows, s.cols);
}

// The softmax's passes on the backend compute_options() asks for.
void softmax_fwd_device(const cpu::SoftmaxShape& s, const float* x, float* y) {
  cudaStream_t stream = compute_stream();
  run_on_backend(
      BackendOp::softmax, [&] { return describe_softmax("fwd", s); }, cudnn::softmax_supported(s),
      [&] { cuda::softmax_fwd(s, x, y, stream); }, [&] { cudnn::softmax_fwd(s, x, y, stream); });
}

void softmax_bwd_device(const cpu::SoftmaxShape& s, const float* y, const float* dy, float* dx) {
  cudaStream_t stream = compute_stream();
  run_on_backend(
      BackendOp::softmax, [&] { return describe_softmax("bwd", s); }, cudnn::softmax_supported(s),
      [&] { cuda::softmax_bwd(s, y, dy, dx, stream); },
      [&] { cudnn::softmax_bwd(s, y, dy, dx, stream); });
}
#endif

}  // namespace

namespace detail {

void relu_forward_kernel(const Tensor& x, const Tensor& y) {
  activation_fwd(Kind::relu, 0, x, y);
}

void relu_backward_kernel(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  activation_bwd(Kind::relu, 0, y, dy, dx);
}

}  // namespace detail

Tensor relu(const Tensor& x) {
  return activation(Kind::relu, x);
}

Tensor leaky_relu(const Tensor& x, double alpha) {
  CU3D_CHECK(alpha >= 0,
             "leaky_relu: alpha = {} must not be negative (the backward reads the output's sign)",
             alpha);
  return activation(Kind::leaky_relu, x, alpha);
}

Tensor sigmoid(const Tensor& x) {
  return activation(Kind::sigmoid, x);
}

Tensor softmax(const Tensor& x) {
  check_input("softmax", x);
  CU3D_CHECK(x.dim() >= 1 && x.numel() > 0,
             "softmax: x must be non-empty with at least one axis, got {}", x.str());
  const cpu::SoftmaxShape s{x.numel() / x.size(-1), int(x.size(-1))};
  Tensor y = Tensor::empty_like(x);
  if (x.device().is_cuda())
    CU3D_CUDA_CALL("softmax", softmax_fwd_device(s, x.data<float>(), y.data<float>()));
  else
    dispatch_float(x.dtype(), "softmax",
                   [&]<typename T>() { cpu::softmax_fwd<T>(s, x.data<T>(), y.data<T>()); });
  if (!autograd::needs_grad({x})) return y;
  autograd::record("softmax", {x}, {y}, [s, y](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty_like(y);
    if (y.device().is_cuda())
      CU3D_CUDA_CALL("softmax",
                     softmax_bwd_device(s, y.data<float>(), g[0].data<float>(), dx.data<float>()));
    else
      dispatch_float(y.dtype(), "softmax", [&]<typename T>() {
        cpu::softmax_bwd<T>(s, y.data<T>(), g[0].data<T>(), dx.data<T>());
      });
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace cu3d
