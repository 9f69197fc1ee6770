// The CUDA runtime as cu3d uses it: checked calls, device discovery, stream-ordered device
// memory, and RAII handles for streams and events. Everything that touches the CUDA runtime
// directly goes through here so that every return code is checked in one way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "kernels/error.h"

namespace cu3d::cuda {

// Throws cu3d::Error naming the failed call, its file and line, and CUDA's message.
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);

#define CU3D_CUDA_CHECK(call)                                                  \
  do {                                                                         \
    const cudaError_t cu3d_status_ = (call);                                   \
    if (cu3d_status_ != cudaSuccess)                                           \
      ::cu3d::cuda::throw_cuda_error(cu3d_status_, #call, __FILE__, __LINE__); \
  } while (0)

// Checks the last launch; `op` names the kernel and its shape for the message.
void check_launch(const std::string& op);

// True when a CUDA device can be used; otherwise `reason` (if given) says why not.
bool device_available(std::string* reason = nullptr);

// The CUDA runtime, driver and cuDNN versions, the architectures this build has code for, and
// device 0 (name, compute capability, SMs, memory) or why there is none: one line for
// `cu3d --version` and bug reports.
std::string describe_cuda();

// Multiprocessors of the current device (cached after the first query): grids are sized in
// waves of it.
int multiprocessor_count();

// The most dynamic shared memory one block of the current device may opt in to (cached after
// the first query; 227 KB on an H100).
int max_shared_memory_per_block();

// The current device's compute capability (cached after the first query, as
// multiprocessor_count's; -1.-1 when there is no device): picks the kernels a device can run.
struct ComputeCapability {
  int major, minor;
};
ComputeCapability compute_capability();

// Blocks of `threads` for a grid-stride loop over `count` items: one item per thread up to 8
// blocks per SM (enough bytes in flight to saturate HBM), then each thread loops.
int grid_stride_blocks(int64_t count, int threads = 256);

// Lets `kernel` take `bytes` of dynamic shared memory: past 48 KB that needs the opt-in, per
// device (cheap enough per launch), and two blocks of ~100 KB, or one of ~200 KB, fit an SM only
// with its largest shared-memory carveout (228 KB on an H100), so ask for it rather than leave it
// to the driver.
template <class Kernel>
void allow_shared_memory(Kernel* kernel, int bytes) {
  CU3D_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  CU3D_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       cudaSharedmemCarveoutMaxShared));
}

// Stream-ordered device memory from CUDA's default memory pool, whose release threshold is
// raised on first use so freed blocks are kept for reuse instead of returned to the driver.
// An out-of-memory error names the request and suggests a smaller batch.
void* malloc_async(std::size_t bytes, cudaStream_t stream);
void free_async(void* ptr, cudaStream_t stream);

// Pinned host memory (page-locked) for fast, asynchronous host<->device copies.
void* malloc_pinned(std::size_t bytes);
void free_pinned(void* ptr);

// Owning wrapper around a CUDA stream.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

// Owning wrapper around a CUDA event, for timing and cross-stream ordering.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream);
  // Milliseconds from `start` to this event; both must have completed.
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace cu3d::cuda
