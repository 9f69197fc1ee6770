#include "kernels/cudnn/common.h"

#include <fmt/format.h>

namespace cu3d::cudnn {
namespace {

class Handle {
 public:
  Handle() { CU3D_CUDNN_CHECK(cudnnCreate(&handle_), "cudnnCreate"); }
  ~Handle() { cudnnDestroy(handle_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  cudnnHandle_t get() const { return handle_; }

 private:
  cudnnHandle_t handle_ = nullptr;
};

}  // namespace

void check(cudnnStatus_t status, const char* call, const std::string& what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw Error(
        fmt::format("cuDNN error {} in {} for {}", cudnnGetErrorString(status), call, what));
}

cudnnHandle_t handle_on(cudaStream_t stream) {
  thread_local Handle handle;
  CU3D_CUDNN_CHECK(cudnnSetStream(handle.get(), stream), "binding the cuDNN handle to a stream");
  return handle.get();
}

void set_ndhwc(const TensorDesc& desc, cudnnDataType_t type, int n, Dims3 e, int c,
               const std::string& what) {
  const int dims[5] = {n, c, e.d, e.h, e.w};
  const int strides[5] = {e.d * e.h * e.w * c, 1, e.h * e.w * c, e.w * c, c};
  CU3D_CUDNN_CHECK(cudnnSetTensorNdDescriptor(desc.get(), type, 5, dims, strides), what);
}

}  // namespace cu3d::cudnn
