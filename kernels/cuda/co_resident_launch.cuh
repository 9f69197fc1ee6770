// Launches whose blocks wait for each other, which is safe only when every block of the grid is
// resident at once: a cooperative launch (cudaLaunchKernelEx with the cooperative attribute,
// which refuses a grid the device cannot hold at once rather than deadlock), and the occupancy
// query that sizes such a grid. The host emulation (tests/emulation, CU3D_PTX_EMULATION) runs
// the grid's blocks concurrently, switched at their atomics, fences and sleeps.
#pragma once

#include <map>
#include <mutex>
#include <tuple>

#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {

// How many blocks of `kernel` (`threads` each, `shared_bytes` of dynamic shared memory, which
// this lets the kernel take) the device holds at once. Asked once per kernel and size: the
// query and the attribute cost more host time than launching a small kernel.
template <class... Params>
int co_resident_blocks(void (*kernel)(Params...), int threads, int shared_bytes) {
#if defined(CU3D_PTX_EMULATION)
  (void)kernel;
  return emu::co_resident_blocks(threads, shared_bytes);
#else
  static std::mutex mutex;
  static std::map<std::tuple<const void*, int, int>, int> known;
  const std::lock_guard lock(mutex);
  const auto key = std::make_tuple(reinterpret_cast<const void*>(kernel), threads, shared_bytes);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  // The most the device allows, so that no later size finds the kernel set for less.
  allow_shared_memory(kernel, max_shared_memory_per_block());
  int per_sm = 0;
  CU3D_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, shared_bytes));
  const int blocks = per_sm * multiprocessor_count();
  known.emplace(key, blocks);  // only once the queries succeeded: a failure is asked again
  return blocks;
#endif
}

// kernel<<<blocks, threads, shared_bytes, stream>>>(args...) with every block resident at once
// (`blocks` at most co_resident_blocks'); the caller checks the launch (check_launch).
template <class... Params, class... Args>
void launch_co_resident(void (*kernel)(Params...), int blocks, int threads, int shared_bytes,
                        cudaStream_t stream, const Args&... args) {
#if defined(CU3D_PTX_EMULATION)
  (void)stream;
  emu::launch_cooperative([&] { kernel(args...); }, emu::Dim3(unsigned(blocks)),
                          emu::Dim3(unsigned(threads)), size_t(shared_bytes));
#else
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(blocks));
  config.blockDim = dim3(unsigned(threads));
  config.dynamicSmemBytes = size_t(shared_bytes);
  config.stream = stream;
  cudaLaunchAttribute cooperative = {};
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  config.attrs = &cooperative;
  config.numAttrs = 1;
  CU3D_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args...));
#endif
}

}  // namespace cu3d::cuda
