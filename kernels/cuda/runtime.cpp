#include "kernels/cuda/runtime.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>

#include <cudnn.h>

namespace cu3d::cuda {

namespace {

// What to do about `status`, when there is something to say: a GPU that finds no code of its
// own in the build (an older GPU than the build's targets) needs a build for it. The first call
// to notice may be a launch or a kernel attribute (cudaFuncSetAttribute: invalid device
// function).
std::string advice(cudaError_t status) {
  if (status != cudaErrorNoKernelImageForDevice && status != cudaErrorInvalidDeviceFunction)
    return "";
  const ComputeCapability cc = compute_capability();
  if (cc.major < 0) return "";
  return fmt::format(
      ". This build has GPU code for the architectures {} only, perhaps not for this device "
      "(compute capability {}.{}): configure a build with -DCMAKE_CUDA_ARCHITECTURES={}{} (or "
      "native) and rebuild",
      CU3D_CUDA_ARCHITECTURES, cc.major, cc.minor, cc.major, cc.minor);
}

}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("CUDA error {} ({}) in {} at {}:{}{}", cudaGetErrorName(status),
                          cudaGetErrorString(status), call, file, line, advice(status)));
}

void check_launch(const std::string& op) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(fmt::format("CUDA launch of {} failed: {} ({}){}", op, cudaGetErrorName(status),
                            cudaGetErrorString(status), advice(status)));
}

bool device_available(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (reason)
      *reason = status != cudaSuccess
                    ? fmt::format("no usable CUDA device: {}", cudaGetErrorString(status))
                    : std::string("no CUDA device found");
    cudaGetLastError();  // clear the sticky error of the failed query
    return false;
  }
  return true;
}

std::string describe_cuda() {
  // major * 1000 + minor * 10, as both version queries report it; 0: no driver.
  const auto version = [](int v) { return fmt::format("{}.{}", v / 1000, v % 1000 / 10); };
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  const size_t cudnn = cudnnGetVersion();  // major * 10000 + minor * 100 + patch since cuDNN 9
  std::string line = fmt::format("runtime {}, driver {}, cuDNN {}.{}.{}, code for {}; ",
                                 version(runtime), driver ? version(driver) : "none", cudnn / 10000,
                                 cudnn % 10000 / 100, cudnn % 100, CU3D_CUDA_ARCHITECTURES);
  std::string reason;
  cudaDeviceProp prop{};
  if (!device_available(&reason)) return line + reason;
  if (const cudaError_t status = cudaGetDeviceProperties(&prop, 0); status != cudaSuccess) {
    cudaGetLastError();
    return line + fmt::format("device 0 unreadable: {}", cudaGetErrorString(status));
  }
  return line + fmt::format("device 0: {} (compute capability {}.{}, {} SMs, {:.1f} GiB)",
                            prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                            double(prop.totalGlobalMem) / double(1 << 30));
}

int multiprocessor_count() {
  static const int count = [] {
    int device = 0, sms = 0;
    CU3D_CUDA_CHECK(cudaGetDevice(&device));
    CU3D_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
  }();
  return count;
}

int max_shared_memory_per_block() {
  static const int bytes = [] {
    int device = 0, optin = 0;
    CU3D_CUDA_CHECK(cudaGetDevice(&device));
    CU3D_CUDA_CHECK(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return optin;
  }();
  return bytes;
}

ComputeCapability compute_capability() {
  static const ComputeCapability cc = [] {
    int device = 0;
    ComputeCapability c{-1, -1};
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&c.major, cudaDevAttrComputeCapabilityMajor, device) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&c.minor, cudaDevAttrComputeCapabilityMinor, device) !=
            cudaSuccess) {
      cudaGetLastError();  // clears it: asking is not a failure
      return ComputeCapability{-1, -1};
    }
    return c;
  }();
  return cc;
}

int grid_stride_blocks(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return int(std::max<int64_t>(1, std::min<int64_t>(blocks, 8 * multiprocessor_count())));
}

namespace {

// Keep freed blocks in the pool: returning them to the driver at every synchronization would
// make each training step pay for cudaMalloc again.
void raise_pool_release_threshold() {
  static std::once_flag once;
  std::call_once(once, [] {
    int device = 0;
    CU3D_CUDA_CHECK(cudaGetDevice(&device));
    cudaMemPool_t pool;
    CU3D_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t threshold = UINT64_MAX;
    CU3D_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  });
}

}  // namespace

void* malloc_async(std::size_t bytes, cudaStream_t stream) {
  raise_pool_release_threshold();
  void* ptr = nullptr;
  const cudaError_t status = cudaMallocAsync(&ptr, bytes, stream);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(
        fmt::format("CUDA out of memory: asked for {:.1f} MiB with {:.1f} MiB free of {:.1f} MiB; "
                    "try a smaller --batch",
                    bytes / 1048576.0, free_bytes / 1048576.0, total_bytes / 1048576.0));
  }
  CU3D_CUDA_CHECK(status);
  return ptr;
}

void free_async(void* ptr, cudaStream_t stream) {
  if (ptr) CU3D_CUDA_CHECK(cudaFreeAsync(ptr, stream));
}

void* malloc_pinned(std::size_t bytes) {
  void* ptr = nullptr;
  CU3D_CUDA_CHECK(cudaMallocHost(&ptr, bytes));
  return ptr;
}

void free_pinned(void* ptr) {
  if (ptr) CU3D_CUDA_CHECK(cudaFreeHost(ptr));
}

Stream::Stream() {
  CU3D_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}
Stream::~Stream() {
  cudaStreamDestroy(stream_);
}
void Stream::synchronize() const {
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

Event::Event() {
  CU3D_CUDA_CHECK(cudaEventCreate(&event_));
}
Event::~Event() {
  cudaEventDestroy(event_);
}
void Event::record(cudaStream_t stream) {
  CU3D_CUDA_CHECK(cudaEventRecord(event_, stream));
}
float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  CU3D_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

}  // namespace cu3d::cuda
