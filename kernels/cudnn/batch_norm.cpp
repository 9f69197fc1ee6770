#include "kernels/cudnn/batch_norm.h"

#include <climits>
#include <string>

#include <fmt/format.h>

#include "kernels/cudnn/common.h"

namespace cu3d::cudnn {
namespace {

// The activations' and the per-channel parameters' descriptors of one shape.
struct BatchNormCall {
  TensorDesc x, channels;
  std::string what;

  BatchNormCall(const char* op, const BatchNormShape& s, float eps)
      : what(fmt::format("cudnn {} ({} rows x {} channels, eps {})", op, s.rows, s.c, eps)) {
    CU3D_CHECK(batch_norm_supported(s, eps),
               "{}: cuDNN needs eps >= {} and at most {} values; use the cu3d backend", what,
               CUDNN_BN_MIN_EPSILON, INT_MAX);
    set_rows(x, s.rows, s.c, what);
    set_rows(channels, 1, s.c, what);
  }
};

}  // namespace

bool batch_norm_supported(const BatchNormShape& s, float eps) {
  return double(eps) >= CUDNN_BN_MIN_EPSILON && s.rows <= INT_MAX && s.size() <= INT_MAX;
}

void batch_norm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma,
                          const float* beta, float eps, float momentum, float* y, float* mean,
                          float* rstd, float* running_mean, float* running_var,
                          cudaStream_t stream) {
  const BatchNormCall call("batch_norm_fwd_train", s, eps);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
                       handle_on(stream), CUDNN_BATCHNORM_SPATIAL, &one, &zero, call.x.get(), x,
                       call.x.get(), y, call.channels.get(), gamma, beta, double(momentum),
                       running_mean, running_var, double(eps), mean, rstd),
                   call.what);
}

void batch_norm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma,
                         const float* beta, const float* running_mean, const float* running_var,
                         float eps, float* y, cudaStream_t stream) {
  const BatchNormCall call("batch_norm_fwd_eval", s, eps);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(
      cudnnBatchNormalizationForwardInference(
          handle_on(stream), CUDNN_BATCHNORM_SPATIAL, &one, &zero, call.x.get(), x, call.x.get(), y,
          call.channels.get(), gamma, beta, running_mean, running_var, double(eps)),
      call.what);
}

void batch_norm_bwd(const BatchNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, float eps, float* dx, float* dgamma,
                    float* dbeta, cudaStream_t stream) {
  const BatchNormCall call("batch_norm_bwd", s, eps);
  const float one = 1.f, zero = 0.f;
  const cudnnTensorDescriptor_t d = call.x.get();
  CU3D_CUDNN_CHECK(
      cudnnBatchNormalizationBackward(handle_on(stream), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one,
                                      &zero, d, x, d, dy, d, dx, call.channels.get(), gamma, dgamma,
                                      dbeta, double(eps), mean, rstd),
      call.what);
}

}  // namespace cu3d::cudnn
