#include "kernels/cudnn/common.h"

#include <climits>

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

void set_rows(const TensorDesc& desc, int64_t rows, int64_t cols, const std::string& what) {
  CU3D_CHECK(rows <= INT_MAX && cols <= INT_MAX && rows * cols <= INT_MAX,
             "{}: {} x {} values exceed cuDNN's int extents; use the cu3d backend", what, rows,
             cols);
  CU3D_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                              int(rows), int(cols), 1, 1),
                   what);
}

}  // namespace cu3d::cudnn
