// Launches in thread block clusters (sm_90), which the <<<grid, block, shared, stream>>> syntax
// cannot express: cudaLaunchKernelEx with a cluster dimension, and the occupancy query that sizes
// a persistent grid of clusters. The host emulation (tests/emulation, CU3D_PTX_EMULATION) runs
// the same calls on its block emulator, a cluster's blocks together.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {

#if !defined(CU3D_PTX_EMULATION)
// A launch configuration of `blocks` x `threads` in clusters of `cluster` along x; `attribute`
// holds the cluster dimension the configuration points to.
inline cudaLaunchConfig_t cluster_config(int blocks, int threads, size_t shared_bytes,
                                         cudaStream_t stream, int cluster,
                                         cudaLaunchAttribute* attribute) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(blocks));
  config.blockDim = dim3(unsigned(threads));
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  *attribute = {};
  attribute->id = cudaLaunchAttributeClusterDimension;
  attribute->val.clusterDim.x = unsigned(cluster);
  attribute->val.clusterDim.y = 1;
  attribute->val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  return config;
}
#endif

// How many clusters of `cluster` blocks of `kernel` (`threads` each, `shared_bytes` of dynamic
// shared memory, which the kernel must be allowed already) the device runs at once: the size of
// a persistent grid. Not simply SMs / cluster: a cluster's blocks share a GPC, and a GPC with an
// odd number of SMs free leaves one. Asked once per kernel and size (co_resident_blocks' reason:
// the query costs more host time than a small layer's launch).
template <class... Params>
int max_active_clusters(void (*kernel)(Params...), int threads, size_t shared_bytes, int cluster) {
#if defined(CU3D_PTX_EMULATION)
  (void)kernel, (void)threads, (void)shared_bytes;
  return multiprocessor_count() / cluster;
#else
  static std::mutex mutex;
  static std::map<std::tuple<const void*, int, size_t, int>, int> known;
  const std::lock_guard lock(mutex);
  const auto key =
      std::make_tuple(reinterpret_cast<const void*>(kernel), threads, shared_bytes, cluster);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  cudaLaunchAttribute attribute;
  const cudaLaunchConfig_t config = cluster_config(cluster * multiprocessor_count(), threads,
                                                   shared_bytes, nullptr, cluster, &attribute);
  int clusters = 0;
  CU3D_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config));
  known.emplace(key, clusters);
  return clusters;
#endif
}

// kernel<<<blocks, threads, shared_bytes, stream>>>(args...) in clusters of `cluster` blocks
// along x (`blocks` a multiple of it); the caller checks the launch (check_launch).
template <class... Params, class... Args>
void launch_in_clusters(void (*kernel)(Params...), int blocks, int threads, size_t shared_bytes,
                        cudaStream_t stream, int cluster, const Args&... args) {
#if defined(CU3D_PTX_EMULATION)
  (void)stream;
  emu::launch_cluster([&] { kernel(args...); }, emu::Dim3(unsigned(blocks)),
                      emu::Dim3(unsigned(threads)), shared_bytes, cluster);
#else
  cudaLaunchAttribute attribute;
  const cudaLaunchConfig_t config =
      cluster_config(blocks, threads, shared_bytes, stream, cluster, &attribute);
  CU3D_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args...));
#endif
}

}  // namespace cu3d::cuda
