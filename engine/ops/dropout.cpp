#include "engine/ops/dropout.h"

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "kernels/cpu/dropout.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/activation.cuh"
#endif

namespace cu3d {
namespace {

// The mask is a function of (seed, offset, index) on both devices, so forward and backward
// apply the same one and a CPU and a CUDA run agree.
void apply_dropout(const char* op, const Tensor& in, double p, uint64_t seed, uint64_t offset,
                   bool backward, const Tensor& out) {
  const int64_t n = in.numel();
  if (in.device().is_cuda()) {
    CU3D_CUDA_CALL(op, backward ? cuda::dropout_bwd(n, in.data<float>(), p, seed, offset,
                                                    out.data<float>(), compute_stream())
                                : cuda::dropout_fwd(n, in.data<float>(), p, seed, offset,
                                                    out.data<float>(), compute_stream()));
    return;
  }
  dispatch_float(in.dtype(), op, [&]<typename T>() {
    if (backward)
      cpu::dropout_bwd<T>(n, in.data<T>(), p, seed, offset, out.data<T>());
    else
      cpu::dropout_fwd<T>(n, in.data<T>(), p, seed, offset, out.data<T>());
  });
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  check_defined("dropout", "x", x);
  CU3D_CHECK(p >= 0 && p < 1, "dropout: rate p = {} for {} must lie in [0, 1)", p, x.str());
  if (!training || p == 0) return x;
  check_compute_dtype("dropout", x);
  Tensor y = Tensor::empty_like(x);
  apply_dropout("dropout", x, p, seed, offset, false, y);
  if (autograd::needs_grad({x})) {
    autograd::record("dropout", {x}, {y}, [p, seed, offset](const std::vector<Tensor>& g) {
      Tensor dx = Tensor::empty_like(g[0]);
      apply_dropout("dropout", g[0], p, seed, offset, true, dx);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace cu3d
