#include "engine/ops/dense.h"

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "kernels/cpu/dense.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/dense.cuh"
#endif

namespace cu3d {
namespace {

void check_dense_args(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_defined("dense", "x", x);
  check_defined("dense", "w", w);
  CU3D_CHECK(x.dim() == 2 && w.dim() == 2,
             "dense: expected x (m, in) and w (out, in), got x {} and w {} (flatten x first)",
             x.str(), w.str());
  check_compute_dtype("dense", x);
  check_same_dtype_device("dense", {x, w, b});
  CU3D_CHECK(x.size(1) == w.size(1),
             "dense: x {} has {} features but w {} expects {} (w is (out, in))", x.str(), x.size(1),
             w.str(), w.size(1));
  if (b.defined()) check_shape("dense", "bias b", b, {w.size(0)});
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

void dense_backward(int64_t m, int64_t in, int64_t out, const Tensor& x, const Tensor& w,
                    const Tensor& dy, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL("dense", cuda::dense_bwd(m, in, out, x.data<float>(), w.data<float>(),
                                            dy.data<float>(), data_or_null<float>(dx),
                                            data_or_null<float>(dw), data_or_null<float>(db),
                                            compute_options().precision, compute_stream()));
    return;
  }
  dispatch_float(x.dtype(), "dense", [&]<typename T>() {
    cpu::dense_bwd<T>(m, in, out, x.data<T>(), w.data<T>(), dy.data<T>(), data_or_null<T>(dx),
                      data_or_null<T>(dw), data_or_null<T>(db));
  });
}

}  // namespace

Tensor dense(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_dense_args(x, w, b);
  const int64_t m = x.size(0), in = x.size(1), out = w.size(0);
  Tensor y = Tensor::empty({m, out}, x.dtype(), x.device());
  if (x.device().is_cuda())
    CU3D_CUDA_CALL("dense", cuda::dense_fwd(m, in, out, x.data<float>(), w.data<float>(),
                                            data_or_null<float>(b), y.data<float>(),
                                            compute_options().precision, compute_stream()));
  else
    dispatch_float(x.dtype(), "dense", [&]<typename T>() {
      cpu::dense_fwd<T>(m, in, out, x.data<T>(), w.data<T>(), data_or_null<T>(b), y.data<T>());
    });
  if (!autograd::needs_grad({x, w, b})) return y;
  autograd::record("dense", {x, w, b}, {y}, [x, w, b, m, in, out](const std::vector<Tensor>& g) {
    Tensor dx, dw, db;
    if (x.requires_grad()) dx = Tensor::empty_like(x);
    if (w.requires_grad()) dw = Tensor::empty_like(w);
    if (b.defined() && b.requires_grad()) db = Tensor::empty_like(b);
    dense_backward(m, in, out, x, w, g[0], dx, dw, db);
    return std::vector<Tensor>{dx, dw, db};
  });
  return y;
}

}  // namespace cu3d
