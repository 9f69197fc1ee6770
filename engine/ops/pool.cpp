#include "engine/ops/pool.h"

#include <climits>

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/ops/detail.h"
#include "kernels/cpu/pool3d.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cudnn/pool3d.h"
#endif

namespace cu3d {
namespace {

void check_pool_args(const char* op, const Tensor& x, int dims) {
  check_defined(op, "x", x);
  CU3D_CHECK(x.dim() == dims, "{}: expected x {}, got {}", op,
             dims == 5 ? "(n,d,h,w,c)" : "(n,h,w,c)", x.str());
  check_compute_dtype(op, x);
  for (int64_t extent : x.shape())
    CU3D_CHECK(extent > 0 && extent <= INT_MAX, "{}: every axis must be in [1, {}], got {}", op,
               INT_MAX, x.str());
}

#ifdef CU3D_CUDA
// A pooling call as the backend's auto selection names it.
std::string describe_pool(const char* pass, const Pool3dShape& s) {
  return fmt::format("{} n={} {}x{}x{}x{} window {}x{}x{} stride {}x{}x{} pad {}x{}x{}/{}x{}x{}",
                     pass, s.n, s.in.d, s.in.h, s.in.w, s.c, s.window.d, s.window.h, s.window.w,
                     s.stride.d, s.stride.h, s.stride.w, s.pad_before.d, s.pad_before.h,
                     s.pad_before.w, s.pad_after.d, s.pad_after.h, s.pad_after.w);
}

// The pool's passes on the backend compute_options() asks for. cuDNN pools with one padding per
// axis and floor rounding: other shapes stay on cu3d.
void pool_fwd_device(const Pool3dShape& s, const float* x, float* y) {
  run_on_backend(
      BackendOp::pool, [&] { return describe_pool("maxpool fwd", s); },
      cudnn::maxpool3d_supported(s), [&] { cuda::maxpool3d_fwd(s, x, y, compute_stream()); },
      [&] { cudnn::maxpool3d_fwd(s, x, y, compute_stream()); });
}

void pool_bwd_device(const Pool3dShape& s, const float* x, const float* y, const float* dy,
                     float* dx) {
  run_on_backend(
      BackendOp::pool, [&] { return describe_pool("maxpool bwd", s); },
      cudnn::maxpool3d_supported(s),
      [&] { cuda::maxpool3d_bwd(s, x, y, dy, dx, compute_stream()); },
      [&] { cudnn::maxpool3d_bwd(s, x, y, dy, dx, compute_stream()); });
}
#endif

}  // namespace

namespace detail {

Pool3dShape pool_shape(const char* op, const Shape& x, const Pool3dParams& p,
                       const std::string& args) {
  try {
    return Pool3dShape::make(int(x[0]), {int(x[1]), int(x[2]), int(x[3])}, int(x[4]), p.window,
                             p.stride, p.padding, p.pad, p.ceil_mode);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} ({})", op, e.what(), args));
  }
}

void pool_forward_kernel(const char* op, const Pool3dShape& s, const Tensor& x, const Tensor& y) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL(op, pool_fwd_device(s, x.data<float>(), y.data<float>()));
    return;
  }
  dispatch_float(x.dtype(), op,
                 [&]<typename T>() { cpu::maxpool3d_fwd<T>(s, x.data<T>(), y.data<T>()); });
}

void pool_backward_kernel(const char* op, const Pool3dShape& s, const Tensor& x, const Tensor& y,
                          const Tensor& dy, const Tensor& dx) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL(op, pool_bwd_device(s, x.data<float>(), y.data<float>(), dy.data<float>(),
                                       dx.data<float>()));
    return;
  }
  dispatch_float(x.dtype(), op, [&]<typename T>() {
    cpu::maxpool3d_bwd<T>(s, x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

void pool_relu_backward_kernel(const char* op, const Pool3dShape& s, const Tensor& x,
                               const Tensor& y, const Tensor& dy, const Tensor& dx) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL(op,
                   cuda::maxpool3d_relu_bwd(s, x.data<float>(), y.data<float>(), dy.data<float>(),
                                            dx.data<float>(), compute_stream()));
    return;
  }
  dispatch_float(x.dtype(), op, [&]<typename T>() {
    cpu::maxpool3d_relu_bwd<T>(s, x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

}  // namespace detail

namespace {

// y = maxpool(x) on a 5D tensor, with its tape entry.
Tensor pool_forward(const char* op, const Tensor& x, const Pool3dShape& s,
                    const std::string& x_str) {
  Tensor y = Tensor::empty({s.n, s.out.d, s.out.h, s.out.w, s.c}, x.dtype(), x.device());
  try {
    detail::pool_forward_kernel(op, s, x, y);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} (x {})", op, e.what(), x_str));
  }
  if (!autograd::needs_grad({x})) return y;
  autograd::record(op, {x}, {y}, [op, x, y, s](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty_like(x);
    detail::pool_backward_kernel(op, s, x, y, g[0], dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor max_pool3d(const Tensor& x, const Pool3dParams& params) {
  check_pool_args("max_pool3d", x, 5);
  return pool_forward("max_pool3d", x,
                      detail::pool_shape("max_pool3d", x.shape(), params, "x " + x.str()), x.str());
}

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  check_pool_args("max_pool2d", x, 4);
  const Tensor x5 = x.reshape({x.size(0), 1, x.size(1), x.size(2), x.size(3)});
  const Pool3dParams p3{params.window.with_depth(1), params.stride.with_depth(1), params.padding,
                        params.pad.with_depth(0), params.ceil_mode};
  const Pool3dShape s = detail::pool_shape("max_pool2d", x5.shape(), p3, "x " + x.str());
  return pool_forward("max_pool2d", x5, s, x.str()).reshape({s.n, s.out.h, s.out.w, s.c});
}

}  // namespace cu3d
