#include "engine/ops/dense.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/dense.h"

namespace cu3d {
namespace {

void check_dense_args(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_defined("dense", "x", x);
  check_defined("dense", "w", w);
  CU3D_CHECK(x.dim() == 2 && w.dim() == 2,
             "dense: expected x (m, in) and w (out, in), got x {} and w {} (flatten x first)",
             x.str(), w.str());
  check_cpu("dense", x);
  check_cpu("dense", w);
  check_cpu("dense", b);
  check_same_dtype_device("dense", {x, w, b});
  CU3D_CHECK(x.size(1) == w.size(1),
             "dense: x {} has {} features but w {} expects {} (w is (out, in))", x.str(), x.size(1),
             w.str(), w.size(1));
  if (b.defined()) check_shape("dense", "bias b", b, {w.size(0)});
}

}  // namespace

Tensor dense(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_dense_args(x, w, b);
  const int64_t m = x.size(0), in = x.size(1), out = w.size(0);
  Tensor y = Tensor::empty({m, out}, x.dtype());
  dispatch_float(x.dtype(), "dense", [&]<typename T>() {
    cpu::dense_fwd<T>(m, in, out, x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr,
                      y.data<T>());
  });
  if (!autograd::needs_grad({x, w, b})) return y;
  autograd::record("dense", {x, w, b}, {y}, [x, w, b, m, in, out](const std::vector<Tensor>& g) {
    Tensor dx, dw, db;
    if (x.requires_grad()) dx = Tensor::empty_like(x);
    if (w.requires_grad()) dw = Tensor::empty_like(w);
    if (b.defined() && b.requires_grad()) db = Tensor::empty_like(b);
    dispatch_float(x.dtype(), "dense", [&]<typename T>() {
      const auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
      cpu::dense_bwd<T>(m, in, out, x.data<T>(), w.data<T>(), g[0].data<T>(), ptr(dx), ptr(dw),
                        ptr(db));
    });
    return std::vector<Tensor>{dx, dw, db};
  });
  return y;
}

}  // namespace cu3d
