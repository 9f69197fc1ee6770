#include "engine/ops/norm.h"

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/ops/detail.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/layer_norm.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cudnn/batch_norm.h"
#endif

namespace cu3d {
namespace {

// x is a non-empty (..., c) tensor with at least `min_dims` axes; gamma and beta are (c) of
// x's dtype and device.
void check_affine(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  int min_dims) {
  check_defined(op, "x", x);
  check_defined(op, "gamma", gamma);
  check_defined(op, "beta", beta);
  check_compute_dtype(op, x);
  check_same_dtype_device(op, {x, gamma, beta});
  CU3D_CHECK(x.dim() >= min_dims && x.numel() > 0,
             "{}: x must be a non-empty channels-last tensor with at least {} axes, got {}", op,
             min_dims, x.str());
  const Shape channels{x.size(-1)};
  check_shape(op, "gamma", gamma, channels);
  check_shape(op, "beta", beta, channels);
}

// Running statistics, when defined, are (c) tensors of x's dtype and device.
void check_running(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                   bool training) {
  CU3D_CHECK(training || (running_mean.defined() && running_var.defined()),
             "batch_norm: evaluation of {} needs running_mean and running_var", x.str());
  CU3D_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: running_mean and running_var must both be defined or both undefined");
  if (!running_mean.defined()) return;
  check_same_dtype_device("batch_norm", {x, running_mean, running_var});
  const Shape channels{x.size(-1)};
  check_shape("batch_norm", "running_mean", running_mean, channels);
  check_shape("batch_norm", "running_var", running_var, channels);
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

#ifdef CU3D_CUDA
std::string describe_batch_norm(const char* pass, const cpu::BatchNormShape& s, double eps) {
  return fmt::format("batch_norm {} {} rows x {} eps {}", pass, s.rows, s.c, eps);
}

// The forward on the backend compute_options() asks for. auto times the training forward
// without the running statistics (so that timing does not update them). cuDNN's evaluation
// forward saves no statistics: a forward whose backward will read them (`keep_stats`) runs on
// cu3d.
void batch_norm_forward_device(const cpu::BatchNormShape& s, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, const Tensor& running_mean,
                               const Tensor& running_var, bool training, bool keep_stats,
                               double momentum, double eps, const Tensor& y, const Tensor& mean,
                               const Tensor& rstd) {
  cudaStream_t stream = compute_stream();
  const float *px = x.data<float>(), *g = gamma.data<float>(), *b = beta.data<float>();
  float *py = y.data<float>(), *pm = mean.data<float>(), *pr = rstd.data<float>();
  float *rm = data_or_null<float>(running_mean), *rv = data_or_null<float>(running_var);
  const float e = float(eps), mom = float(momentum);
  const bool cudnn_runs = cudnn::batch_norm_supported(s, e) && (training || !keep_stats);
  if (training) {
    auto cu3d = [&](float* m, float* v) {
      cuda::batch_norm_fwd_train(s, px, g, b, e, mom, py, pm, pr, m, v, stream);
    };
    auto with_cudnn = [&](float* m, float* v) {
      cudnn::batch_norm_fwd_train(s, px, g, b, e, mom, py, pm, pr, m, v, stream);
    };
    const Backend backend = choose_backend(
        BackendOp::batch_norm, [&] { return describe_batch_norm("fwd train", s, eps); }, cudnn_runs,
        [&] { cu3d(nullptr, nullptr); }, [&] { with_cudnn(nullptr, nullptr); });
    backend == Backend::cu3d ? cu3d(rm, rv) : with_cudnn(rm, rv);
    return;
  }
  run_on_backend(
      BackendOp::batch_norm, [&] { return describe_batch_norm("fwd eval", s, eps); }, cudnn_runs,
      [&] { cuda::batch_norm_fwd_eval(s, px, g, b, rm, rv, e, py, pm, pr, stream); },
      [&] { cudnn::batch_norm_fwd_eval(s, px, g, b, rm, rv, e, py, stream); });
}

// The backward on the backend compute_options() asks for: cuDNN's takes batch statistics only.
void batch_norm_backward_device(const cpu::BatchNormShape& s, const Tensor& x, const Tensor& gamma,
                                const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                bool batch_stats, double eps, const Tensor& dx,
                                const Tensor& dgamma, const Tensor& dbeta) {
  cudaStream_t stream = compute_stream();
  const float *px = x.data<float>(), *g = gamma.data<float>(), *m = mean.data<float>(),
              *r = rstd.data<float>(), *pdy = dy.data<float>();
  float *pdx = dx.data<float>(), *dg = dgamma.data<float>(), *db = dbeta.data<float>();
  run_on_backend(
      BackendOp::batch_norm, [&] { return describe_batch_norm("bwd", s, eps); },
      batch_stats && cudnn::batch_norm_supported(s, float(eps)),
      [&] { cuda::batch_norm_bwd(s, px, g, m, r, pdy, batch_stats, pdx, dg, db, stream); },
      [&] { cudnn::batch_norm_bwd(s, px, g, m, r, pdy, float(eps), pdx, dg, db, stream); });
}
#endif

// Training: batch statistics (and the running ones updated); evaluation: the running ones.
// `keep_stats`: the backward will read mean and rstd (the CPU's always writes them; on CUDA it
// decides whether cuDNN may run).
void batch_norm_forward(const cpu::BatchNormShape& s, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, const Tensor& running_mean, const Tensor& running_var,
                        bool training, [[maybe_unused]] bool keep_stats, double momentum,
                        double eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL("batch_norm",
                   batch_norm_forward_device(s, x, gamma, beta, running_mean, running_var, training,
                                             keep_stats, momentum, eps, y, mean, rstd));
    return;
  }
  dispatch_float(x.dtype(), "batch_norm", [&]<typename T>() {
    T *rm = data_or_null<T>(running_mean), *rv = data_or_null<T>(running_var);
    if (training)
      cpu::batch_norm_fwd_train<T>(s, x.data<T>(), gamma.data<T>(), beta.data<T>(), T(eps),
                                   T(momentum), y.data<T>(), mean.data<T>(), rstd.data<T>(), rm,
                                   rv);
    else
      cpu::batch_norm_fwd_eval<T>(s, x.data<T>(), gamma.data<T>(), beta.data<T>(), rm, rv, T(eps),
                                  y.data<T>(), mean.data<T>(), rstd.data<T>());
  });
}

// `eps`: the forward's, which cuDNN's backward takes again (the CPU's reads it from rstd).
void batch_norm_backward(const cpu::BatchNormShape& s, const Tensor& x, const Tensor& gamma,
                         const Tensor& mean, const Tensor& rstd, const Tensor& dy, bool batch_stats,
                         [[maybe_unused]] double eps, const Tensor& dx, const Tensor& dgamma,
                         const Tensor& dbeta) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL("batch_norm backward",
                   batch_norm_backward_device(s, x, gamma, mean, rstd, dy, batch_stats, eps, dx,
                                              dgamma, dbeta));
    return;
  }
  dispatch_float(x.dtype(), "batch_norm backward", [&]<typename T>() {
    cpu::batch_norm_bwd<T>(s, x.data<T>(), gamma.data<T>(), mean.data<T>(), rstd.data<T>(),
                           dy.data<T>(), batch_stats, dx.data<T>(), dgamma.data<T>(),
                           dbeta.data<T>());
  });
}

}  // namespace

namespace detail {

#ifdef CU3D_CUDA
// The per-sample kernels compute_options() asks for.
cuda::SampleNormPath sample_norm_path() {
  return compute_options().resident_layer_norm ? cuda::SampleNormPath::automatic
                                               : cuda::SampleNormPath::pipelined;
}
#endif

cpu::LayerNormShape layer_norm_shape(const Shape& x, LayerNormVariant variant) {
  const int64_t c = x.back(), numel = shape_numel(x);
  if (variant == LayerNormVariant::per_position) return {numel / c, 1, int(c)};
  const int64_t n = x[0];
  return {n, numel / (n * c), int(c)};
}

void layer_norm_forward_kernel(const cpu::LayerNormShape& s, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, double eps, const Tensor& y, const Tensor& mean,
                               const Tensor& rstd) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL("layer_norm",
                   cuda::layer_norm_fwd(s, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                                        float(eps), y.data<float>(), mean.data<float>(),
                                        rstd.data<float>(), compute_stream(), sample_norm_path()));
    return;
  }
  dispatch_float(x.dtype(), "layer_norm", [&]<typename T>() {
    cpu::layer_norm_fwd<T>(s, x.data<T>(), gamma.data<T>(), beta.data<T>(), T(eps), y.data<T>(),
                           mean.data<T>(), rstd.data<T>());
  });
}

void layer_norm_backward(const cpu::LayerNormShape& s, const Tensor& x, const Tensor& gamma,
                         const Tensor& mean, const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                         const Tensor& dgamma, const Tensor& dbeta) {
  if (x.device().is_cuda()) {
    CU3D_CUDA_CALL("layer_norm backward",
                   cuda::layer_norm_bwd(s, x.data<float>(), gamma.data<float>(), mean.data<float>(),
                                        rstd.data<float>(), dy.data<float>(), dx.data<float>(),
                                        dgamma.data<float>(), dbeta.data<float>(), compute_stream(),
                                        sample_norm_path()));
    return;
  }
  dispatch_float(x.dtype(), "layer_norm backward", [&]<typename T>() {
    cpu::layer_norm_bwd<T>(s, x.data<T>(), gamma.data<T>(), mean.data<T>(), rstd.data<T>(),
                           dy.data<T>(), dx.data<T>(), dgamma.data<T>(), dbeta.data<T>());
  });
}

}  // namespace detail

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                  LayerNormVariant variant) {
  check_affine("layer_norm", x, gamma, beta, 2);
  CU3D_CHECK(eps >= 0, "layer_norm: eps = {} must not be negative", eps);
  const cpu::LayerNormShape s = detail::layer_norm_shape(x.shape(), variant);
  Tensor y = Tensor::empty_like(x);
  const Tensor mean = Tensor::empty({s.groups}, x.dtype(), x.device());
  const Tensor rstd = Tensor::empty({s.groups}, x.dtype(), x.device());
  detail::layer_norm_forward_kernel(s, x, gamma, beta, eps, y, mean, rstd);
  if (autograd::needs_grad({x, gamma, beta})) {
    autograd::record("layer_norm", {x, gamma, beta}, {y},
                     [s, x, gamma, mean, rstd](const std::vector<Tensor>& g) {
                       Tensor dx = Tensor::empty_like(x);
                       Tensor dgamma = Tensor::empty_like(gamma);
                       Tensor dbeta = Tensor::empty_like(gamma);
                       detail::layer_norm_backward(s, x, gamma, mean, rstd, g[0], dx, dgamma,
                                                   dbeta);
                       return std::vector<Tensor>{dx, dgamma, dbeta};
                     });
  }
  return y;
}

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  check_affine("batch_norm", x, gamma, beta, 1);
  check_running(x, running_mean, running_var, training);
  CU3D_CHECK(momentum >= 0 && momentum <= 1 && eps >= 0,
             "batch_norm: momentum = {} must lie in [0, 1] and eps = {} must not be negative",
             momentum, eps);
  const cpu::BatchNormShape s{x.numel() / x.size(-1), int(x.size(-1))};
  CU3D_CHECK(!training || s.rows >= 2,
             "batch_norm: training on {} has only {} value per channel; batch statistics need at "
             "least 2 (use a larger batch or evaluation mode)",
             x.str(), s.rows);
  Tensor y = Tensor::empty_like(x);
  const Tensor mean = Tensor::empty({s.c}, x.dtype(), x.device());
  const Tensor rstd = Tensor::empty({s.c}, x.dtype(), x.device());
  const bool needs_grad = autograd::needs_grad({x, gamma, beta});
  batch_norm_forward(s, x, gamma, beta, running_mean, running_var, training, needs_grad, momentum,
                     eps, y, mean, rstd);
  if (needs_grad) {
    autograd::record("batch_norm", {x, gamma, beta}, {y},
                     [s, x, gamma, mean, rstd, training, eps](const std::vector<Tensor>& g) {
                       Tensor dx = Tensor::empty_like(x);
                       Tensor dgamma = Tensor::empty_like(gamma);
                       Tensor dbeta = Tensor::empty_like(gamma);
                       batch_norm_backward(s, x, gamma, mean, rstd, g[0], training, eps, dx, dgamma,
                                           dbeta);
                       return std::vector<Tensor>{dx, dgamma, dbeta};
                     });
  }
  return y;
}

}  // namespace cu3d
