// The emulation's kernels/cuda/runtime.h: device memory is host memory (poisoned when handed
// out, so a kernel that reads workspace it never wrote shows it), launches are checked by the
// emulator itself, and the device is an H100's 132 SMs unless a test asks for fewer (to make
// the grid-stride loops go round).
#include "kernels/cuda/runtime.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "block.h"

namespace cu3d {
namespace {
int emulated_multiprocessors = 132;
int emulated_shared_per_block = 227 * 1024, emulated_shared_per_sm = 228 * 1024;
}  // namespace

void emu::set_multiprocessors(int count) {
  emulated_multiprocessors = count;
}

void emu::set_shared_memory(int per_block, int per_sm) {
  emulated_shared_per_block = per_block;
  emulated_shared_per_sm = per_sm;
}

int emu::co_resident_blocks(int threads, int shared_bytes) {
  if (shared_bytes > emulated_shared_per_block) return 0;
  const int per_sm = std::min(2048 / threads, emulated_shared_per_sm / (shared_bytes + 1024));
  return std::min(per_sm * emulated_multiprocessors, resident_blocks());
}

namespace cuda {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw Error(
      fmt::format("emulated CUDA call {} failed with {} at {}:{}", call, int(status), file, line));
}

void check_launch(const std::string&) {}

bool device_available(std::string* reason) {
  if (reason) *reason = "a host emulation";
  return false;
}

int multiprocessor_count() {
  return emulated_multiprocessors;
}

int max_shared_memory_per_block() {
  return emulated_shared_per_block;
}

ComputeCapability compute_capability() {
  return {9, 0};
}

int grid_stride_blocks(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return int(std::max<int64_t>(1, std::min<int64_t>(blocks, 8 * multiprocessor_count())));
}

void* malloc_async(std::size_t bytes, cudaStream_t) {
  auto* p = static_cast<unsigned char*>(std::malloc(bytes ? bytes : 1));
  const uint32_t poison = 0x7fc0dead;
  for (std::size_t i = 0; i + 4 <= bytes; i += 4)
    std::memcpy(p + i, &poison, 4);
  return p;
}

void free_async(void* ptr, cudaStream_t) {
  std::free(ptr);
}

}  // namespace cuda
}  // namespace cu3d
