#include "engine/ops/elementwise.h"

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "kernels/cpu/elementwise.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/elementwise.cuh"
#endif

namespace cu3d {
namespace {

// The checks every binary element-wise op makes: defined, same dtype/device, same shape.
void check_binary(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, "a", a);
  check_defined(op, "b", b);
  check_compute_dtype(op, a);
  check_same_dtype_device(op, {a, b});
  CU3D_CHECK(a.shape() == b.shape(), "{}: shapes differ, {} and {} (no broadcasting)", op, a.str(),
             b.str());
}

void check_unary(const char* op, const Tensor& x) {
  check_defined(op, "x", x);
  check_compute_dtype(op, x);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_binary("add", a, b);
  Tensor y = Tensor::empty_like(a);
  if (a.device().is_cuda())
    CU3D_CUDA_CALL("add", cuda::add(a.numel(), a.data<float>(), b.data<float>(), y.data<float>(),
                                    compute_stream()));
  else
    dispatch_float(a.dtype(), "add", [&]<typename T>() {
      cpu::add<T>(a.numel(), a.data<T>(), b.data<T>(), y.data<T>());
    });
  if (autograd::needs_grad({a, b}))
    autograd::record("add", {a, b}, {y}, [](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0], g[0]};
    });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_binary("mul", a, b);
  Tensor y = Tensor::empty_like(a);
  if (a.device().is_cuda())
    CU3D_CUDA_CALL("mul", cuda::mul(a.numel(), a.data<float>(), b.data<float>(), y.data<float>(),
                                    compute_stream()));
  else
    dispatch_float(a.dtype(), "mul", [&]<typename T>() {
      cpu::mul<T>(a.numel(), a.data<T>(), b.data<T>(), y.data<T>());
    });
  if (autograd::needs_grad({a, b}))
    autograd::record("mul", {a, b}, {y}, [a, b](const std::vector<Tensor>& g) {
      autograd::NoGradGuard no_grad;
      return std::vector<Tensor>{mul(g[0], b), mul(g[0], a)};
    });
  return y;
}

Tensor scale(const Tensor& x, double alpha) {
  check_unary("scale", x);
  Tensor y = Tensor::empty_like(x);
  if (x.device().is_cuda())
    CU3D_CUDA_CALL("scale", cuda::scale(x.numel(), float(alpha), x.data<float>(), y.data<float>(),
                                        compute_stream()));
  else
    dispatch_float(x.dtype(), "scale", [&]<typename T>() {
      cpu::scale<T>(x.numel(), T(alpha), x.data<T>(), y.data<T>());
    });
  if (autograd::needs_grad({x}))
    autograd::record("scale", {x}, {y}, [alpha](const std::vector<Tensor>& g) {
      autograd::NoGradGuard no_grad;
      return std::vector<Tensor>{scale(g[0], alpha)};
    });
  return y;
}

Tensor sum(const Tensor& x) {
  check_unary("sum", x);
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  if (x.device().is_cuda())
    CU3D_CUDA_CALL("sum", cuda::sum(x.numel(), x.data<float>(), y.data<float>(), compute_stream()));
  else
    dispatch_float(x.dtype(), "sum",
                   [&]<typename T>() { *y.data<T>() = T(cpu::sum<T>(x.numel(), x.data<T>())); });
  if (autograd::needs_grad({x})) {
    const Shape shape = x.shape();
    autograd::record("sum", {x}, {y}, [shape](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{Tensor::full(shape, g[0].item(), g[0].dtype(), g[0].device())};
    });
  }
  return y;
}

Tensor mean(const Tensor& x) {
  CU3D_CHECK(x.defined() && x.numel() > 0, "mean: needs a non-empty tensor, got {}", x.str());
  return scale(sum(x), 1.0 / double(x.numel()));
}

void accumulate_(const Tensor& dst, const Tensor& src) {
  check_binary("accumulate", dst, src);
  if (dst.device().is_cuda())
    CU3D_CUDA_CALL("accumulate", cuda::accumulate(dst.numel(), src.data<float>(), dst.data<float>(),
                                                  compute_stream()));
  else
    dispatch_float(dst.dtype(), "accumulate", [&]<typename T>() {
      cpu::add<T>(dst.numel(), dst.data<T>(), src.data<T>(), dst.data<T>());
    });
}

}  // namespace cu3d
