#include "kernels/cudnn/softmax.h"

#include <climits>
#include <string>

#include <fmt/format.h>

#include "kernels/cudnn/common.h"

namespace cu3d::cudnn {
namespace {

struct SoftmaxCall {
  TensorDesc rows;
  std::string what;

  SoftmaxCall(const char* op, const SoftmaxShape& s)
      : what(fmt::format("cudnn {} ({} rows x {} columns)", op, s.rows, s.cols)) {
    set_rows(rows, s.rows, s.cols, what);
  }
};

}  // namespace

bool softmax_supported(const SoftmaxShape& s) {
  return s.rows <= INT_MAX && s.size() <= INT_MAX;
}

void softmax_fwd(const SoftmaxShape& s, const float* x, float* y, cudaStream_t stream) {
  const SoftmaxCall call("softmax_fwd", s);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(
      cudnnSoftmaxForward(handle_on(stream), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE,
                          &one, call.rows.get(), x, &zero, call.rows.get(), y),
      call.what);
}

void softmax_bwd(const SoftmaxShape& s, const float* y, const float* dy, float* dx,
                 cudaStream_t stream) {
  const SoftmaxCall call("softmax_bwd", s);
  const float one = 1.f, zero = 0.f;
  const cudnnTensorDescriptor_t d = call.rows.get();
  CU3D_CUDNN_CHECK(
      cudnnSoftmaxBackward(handle_on(stream), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE,
                           &one, d, y, d, dy, &zero, d, dx),
      call.what);
}

}  // namespace cu3d::cudnn
