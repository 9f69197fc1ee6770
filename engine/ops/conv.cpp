#include "engine/ops/conv.h"

#include <climits>

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/ops/detail.h"
#include "kernels/cpu/conv3d.h"

namespace cu3d {
namespace {

// dx, and dw with db, each only where defined.
void conv_backward_kernels(const char* op, const Conv3dShape& s, const Tensor& x, const Tensor& w,
                           const Tensor& dy, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  if (x.device().is_cuda()) {
    if (dx.defined())
      CU3D_CUDA_CALL(
          op, conv3d_bwd_data_device(s, dy.data<float>(), w.data<float>(), dx.data<float>()));
    if (dw.defined())
      CU3D_CUDA_CALL(
          op, conv3d_bwd_filter_device(s, x.data<float>(), dy.data<float>(), dw.data<float>(),
                                       db.defined() ? db.data<float>() : nullptr));
    return;
  }
  dispatch_float(x.dtype(), op, [&]<typename T>() {
    if (dx.defined()) cpu::conv3d_bwd_data<T>(s, dy.data<T>(), w.data<T>(), dx.data<T>());
    if (dw.defined())
      cpu::conv3d_bwd_filter<T>(s, x.data<T>(), dy.data<T>(), dw.data<T>(),
                                db.defined() ? db.data<T>() : nullptr);
  });
}

}  // namespace

namespace detail {

// The checks shared by conv2d and conv3d, on the tensors as the caller passed them (`dims` axes
// for x and w): defined, a compute dtype, one dtype and device, channels and bias matching the
// filter.
void check_conv_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int dims) {
  const char* layout = dims == 5 ? "x (n,d,h,w,c), w (k,kd,kh,kw,c)" : "x (n,h,w,c), w (k,kh,kw,c)";
  check_defined(op, "x", x);
  check_defined(op, "w", w);
  CU3D_CHECK(x.dim() == dims && w.dim() == dims, "{}: expected {}, got x {} and w {}", op, layout,
             x.str(), w.str());
  check_compute_dtype(op, x);
  check_same_dtype_device(op, {x, w, b});
  CU3D_CHECK(x.size(-1) == w.size(-1),
             "{}: x {} has {} channels but filter w {} expects {} (layout {})", op, x.str(),
             x.size(-1), w.str(), w.size(-1), layout);
  if (b.defined()) check_shape(op, "bias b", b, {w.size(0)});
  for (const Tensor* t : {&x, &w})
    for (int64_t extent : t->shape())
      CU3D_CHECK(extent > 0 && extent <= INT_MAX, "{}: every axis must be in [1, {}], got {}", op,
                 INT_MAX, t->str());
}

Conv3dShape conv_shape(const char* op, const Tensor& x, const Tensor& w, const Conv3dParams& p,
                       const std::string& args) {
  try {
    return Conv3dShape::make(int(x.size(0)), {int(x.size(1)), int(x.size(2)), int(x.size(3))},
                             int(x.size(4)), int(w.size(0)),
                             {int(w.size(1)), int(w.size(2)), int(w.size(3))}, p.stride, p.padding,
                             p.pad);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} ({})", op, e.what(), args));
  }
}

void conv_forward_kernel(const char* op, const Conv3dShape& s, const Tensor& x, const Tensor& w,
                         const Tensor& b, const Tensor& y, bool relu) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL(op, (relu ? conv3d_fwd_bias_relu_device : conv3d_fwd_device)(
                           s, x.data<float>(), w.data<float>(),
                           b.defined() ? b.data<float>() : nullptr, y.data<float>()));
    return;
  }
  dispatch_float(x.dtype(), op, [&]<typename T>() {
    const T* bias = b.defined() ? b.data<T>() : nullptr;
    if (relu)
      cpu::conv3d_fwd_bias_relu<T>(s, x.data<T>(), w.data<T>(), bias, y.data<T>());
    else
      cpu::conv3d_fwd<T>(s, x.data<T>(), w.data<T>(), bias, y.data<T>());
  });
}

std::vector<Tensor> conv_backward(const char* op, const Conv3dShape& s, const Tensor& x,
                                  const Tensor& w, const Tensor& b, const Tensor& dy) {
  Tensor dx, dw, db;
  const bool want_filter = w.requires_grad() || (b.defined() && b.requires_grad());
  if (x.requires_grad()) dx = Tensor::empty_like(x);
  if (want_filter) dw = Tensor::empty_like(w);
  if (want_filter && b.defined()) db = Tensor::empty_like(b);
  conv_backward_kernels(op, s, x, w, dy, dx, dw, db);
  return {dx, dw, db};
}

std::string describe_conv_args(const Tensor& x, const Tensor& w) {
  return fmt::format("x {}, w {}", x.str(), w.str());
}

}  // namespace detail

namespace {

// y = conv(x, w) + b on 5D tensors, with its tape entry.
Tensor conv_forward(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Conv3dShape& s) {
  Tensor y = Tensor::empty({s.n, s.out.d, s.out.h, s.out.w, s.k}, x.dtype(), x.device());
  detail::conv_forward_kernel(op, s, x, w, b, y);
  if (!autograd::needs_grad({x, w, b})) return y;
  autograd::record(op, {x, w, b}, {y}, [op, x, w, b, s](const std::vector<Tensor>& g) {
    return detail::conv_backward(op, s, x, w, b, g[0]);
  });
  return y;
}

}  // namespace

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dParams& params) {
  detail::check_conv_args("conv3d", x, w, b, 5);
  return conv_forward("conv3d", x, w, b,
                      detail::conv_shape("conv3d", x, w, params, detail::describe_conv_args(x, w)));
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& params) {
  detail::check_conv_args("conv2d", x, w, b, 4);
  const Tensor x5 = x.reshape({x.size(0), 1, x.size(1), x.size(2), x.size(3)});
  const Tensor w5 = w.reshape({w.size(0), 1, w.size(1), w.size(2), w.size(3)});
  const Conv3dParams p3{params.stride.with_depth(1), params.padding, params.pad.with_depth(0)};
  const Conv3dShape s = detail::conv_shape("conv2d", x5, w5, p3, detail::describe_conv_args(x, w));
  return conv_forward("conv2d", x5, w5, b, s).reshape({s.n, s.out.h, s.out.w, s.k});
}

}  // namespace cu3d
