// What the cuDNN fallbacks share: checked calls, RAII descriptors, one handle per host thread,
// NDHWC tensor descriptors and stream-ordered scratch memory.
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/cuda/runtime.h"
#include "kernels/shapes.h"

namespace cu3d::cudnn {

// Throws cu3d::Error naming the call, cuDNN's message and `what` (the op and its shape).
void check(cudnnStatus_t status, const char* call, const std::string& what);
#define CU3D_CUDNN_CHECK(call, what) ::cu3d::cudnn::check((call), #call, (what))

// Owns one cuDNN descriptor of type T.
template <class T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() { CU3D_CUDNN_CHECK(Create(&desc_), "descriptor creation"); }
  ~Descriptor() { Destroy(desc_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  T get() const { return desc_; }

 private:
  T desc_ = nullptr;
};
using TensorDesc =
    Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc =
    Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc = Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                            cudnnDestroyConvolutionDescriptor>;
using PoolDesc = Descriptor<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor,
                            cudnnDestroyPoolingDescriptor>;
using ActivationDesc = Descriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                                  cudnnDestroyActivationDescriptor>;

// The calling thread's handle (cuDNN handles are not thread-safe), bound to `stream`.
cudnnHandle_t handle_on(cudaStream_t stream);

// An NDHWC activation (n, d, h, w, c) described in cuDNN's NCDHW dimension order by strides.
void set_ndhwc(const TensorDesc& desc, cudnnDataType_t type, int n, Dims3 e, int c,
               const std::string& what);

// A row-major (rows, cols) fp32 array as the packed NCHW tensor (rows, cols, 1, 1): what cuDNN's
// per-instance ops (softmax, batch norm's spatial mode with rows as the batch) see. Both
// extents must fit cuDNN's int dimensions (checked, naming `what`).
void set_rows(const TensorDesc& desc, int64_t rows, int64_t cols, const std::string& what);

// Device scratch from the stream-ordered pool, freed in stream order.
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t stream)
      : ptr_(bytes ? cuda::malloc_async(bytes, stream) : nullptr), stream_(stream) {}
  ~Scratch() { cuda::free_async(ptr_, stream_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_;
  cudaStream_t stream_;
};

}  // namespace cu3d::cudnn
