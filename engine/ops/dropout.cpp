#include "engine/ops/dropout.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/dropout.h"

namespace cu3d {

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  check_defined("dropout", "x", x);
  CU3D_CHECK(p >= 0 && p < 1, "dropout: rate p = {} for {} must lie in [0, 1)", p, x.str());
  if (!training || p == 0) return x;
  check_cpu("dropout", x);
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "dropout", [&]<typename T>() {
    cpu::dropout_fwd<T>(n, x.data<T>(), p, seed, offset, y.data<T>());
  });
  if (autograd::needs_grad({x})) {
    autograd::record("dropout", {x}, {y}, [n, p, seed, offset](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty_like(g[0]);
      dispatch_float(g[0].dtype(), "dropout", [&]<typename T>() {
        cpu::dropout_bwd<T>(n, g[0].data<T>(), p, seed, offset, dx.data<T>());
      });
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace cu3d
