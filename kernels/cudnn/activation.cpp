#include "kernels/cudnn/activation.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "kernels/cudnn/common.h"

namespace cu3d::cudnn {
namespace {

constexpr int64_t kChunk = int64_t(1) << 30;  // values per call, within cuDNN's int extents

// The activation and a chunk's tensor descriptor for one call.
struct ActivationCall {
  ActivationDesc activation;
  TensorDesc chunk;
  std::string what;
  cudnnHandle_t handle;

  ActivationCall(cudnnActivationMode_t mode, const char* op, int64_t n, cudaStream_t stream)
      : what(fmt::format("cudnn {} ({} values)", op, n)), handle(handle_on(stream)) {
    CU3D_CUDNN_CHECK(
        cudnnSetActivationDescriptor(activation.get(), mode, CUDNN_PROPAGATE_NAN, /*coef=*/0.0),
        what);
  }
  // Calls run(offset) for each chunk of the array, with `chunk` describing that chunk.
  template <class Run>
  void for_each_chunk(int64_t n, Run run) const {
    for (int64_t offset = 0; offset < n; offset += kChunk) {
      const int64_t count = std::min(kChunk, n - offset);
      set_rows(chunk, 1, count, what);
      run(offset);
    }
  }
};

void forward(cudnnActivationMode_t mode, const char* op, int64_t n, const float* x, float* y,
             cudaStream_t stream) {
  const ActivationCall call(mode, op, n, stream);
  const float one = 1.f, zero = 0.f;
  call.for_each_chunk(n, [&](int64_t at) {
    CU3D_CUDNN_CHECK(
        cudnnActivationForward(call.handle, call.activation.get(), &one, call.chunk.get(), x + at,
                               &zero, call.chunk.get(), y + at),
        call.what);
  });
}

void backward(cudnnActivationMode_t mode, const char* op, int64_t n, const float* y,
              const float* dy, float* dx, cudaStream_t stream) {
  const ActivationCall call(mode, op, n, stream);
  const float one = 1.f, zero = 0.f;
  call.for_each_chunk(n, [&](int64_t at) {
    const cudnnTensorDescriptor_t d = call.chunk.get();
    CU3D_CUDNN_CHECK(cudnnActivationBackward(call.handle, call.activation.get(), &one, d, y + at, d,
                                             dy + at, d, y + at, &zero, d, dx + at),
                     call.what);
  });
}

}  // namespace

void relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream) {
  forward(CUDNN_ACTIVATION_RELU, "relu_fwd", n, x, y, stream);
}

void relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  backward(CUDNN_ACTIVATION_RELU, "relu_bwd", n, y, dy, dx, stream);
}

void sigmoid_fwd(int64_t n, const float* x, float* y, cudaStream_t stream) {
  forward(CUDNN_ACTIVATION_SIGMOID, "sigmoid_fwd", n, x, y, stream);
}

void sigmoid_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  backward(CUDNN_ACTIVATION_SIGMOID, "sigmoid_bwd", n, y, dy, dx, stream);
}

}  // namespace cu3d::cudnn
