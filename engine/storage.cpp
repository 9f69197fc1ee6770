#include "engine/storage.h"

#include <cstring>

#include "engine/host_cache.h"
#include "kernels/error.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace cu3d {
namespace {

#ifndef CU3D_CUDA
[[noreturn]] void no_cuda() {
  throw Error(
      "this cu3d was built without the CUDA backend; rebuild with CUDA or use --device cpu");
}
#endif

}  // namespace

Storage::Storage(std::size_t bytes, Device device, bool pinned)
    : bytes_(bytes), device_(device), pinned_(pinned && device.is_cpu()) {
  if (device.is_cuda()) {
#ifdef CU3D_CUDA
    CU3D_CUDA_CHECK(cudaSetDevice(device.index));
    data_ = cuda::malloc_async(bytes, nullptr);
#else
    no_cuda();
#endif
    return;
  }
#ifdef CU3D_CUDA
  if (pinned_) {
    data_ = cuda::malloc_pinned(bytes);
    return;
  }
#endif
  pinned_ = false;
  data_ = host_cache_alloc(bytes);
}

Storage::~Storage() {
#ifdef CU3D_CUDA
  // Destructors must not throw: a failed free at shutdown is not worth terminating for.
  if (device_.is_cuda()) {
    cudaFreeAsync(data_, nullptr);
    return;
  }
  if (pinned_) {
    cudaFreeHost(data_);
    return;
  }
#endif
  host_cache_free(data_, bytes_);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                std::size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef CU3D_CUDA
  CU3D_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, nullptr));
  CU3D_CUDA_CHECK(cudaStreamSynchronize(nullptr));
#else
  no_cuda();
#endif
}

}  // namespace cu3d
