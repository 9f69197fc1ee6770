// One im2col load, copied back (tma_probe.cuh).
#include <fmt/format.h>

#include "kernels/cuda/cluster_launch.cuh"
#include "kernels/cuda/ptx.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tma_probe.cuh"

namespace cu3d::cuda {
namespace {

constexpr int kRowBytes = 128, kSwizzleAtom = 1024, kThreads = 128;

#if defined(CU3D_WGMMA_DEVICE)
// The block copies `rows` rows of the swizzled tile at `box` out: chunk j of row i from where the
// 128-byte swizzle put it (chunk j ^ (i % 8)).
__device__ void copy_rows_out(const unsigned char* box, int rows, uint4* out) {
  for (int q = threadIdx.x; q < rows * 8; q += blockDim.x) {
    const int row = q / 8, chunk = q % 8;
    out[q] = *reinterpret_cast<const uint4*>(box + row * kRowBytes + 16 * (chunk ^ (row % 8)));
  }
}
#endif

// Thread 0 loads the box into 1 KB aligned dynamic shared memory and every thread waits for its
// bytes; then the block copies it out (copy_rows_out).
__global__ void __launch_bounds__(kThreads)
    tma_im2col_probe(const __grid_constant__ TensorMap map, Im2colLoad at, int rows, uint4* out) {
#if defined(CU3D_WGMMA_DEVICE)
  __shared__ uint64_t full;
  unsigned char* dynamic = ptx::dynamic_shared_memory();
  const uint32_t start = ptx::shared_address(dynamic);
  const uint32_t base = (start + kSwizzleAtom - 1) & ~uint32_t(kSwizzleAtom - 1);
  if (threadIdx.x == 0) {
    ptx::mbarrier_init(&full, 1);
    ptx::fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ptx::mbarrier_arrive_expect_tx(&full, uint32_t(rows * kRowBytes));
    ptx::tma_load_im2col_5d(base, &map, &full, at.c, at.w, at.h, at.d, at.n, uint16_t(at.offset.w),
                            uint16_t(at.offset.h), uint16_t(at.offset.d));
  }
  while (!ptx::mbarrier_try_wait(&full, 0)) {
  }
  copy_rows_out(dynamic + (base - start), rows, out);
#else
  __trap();  // not built for sm_90a: the caller checks wgmma_available
#endif
}

// The multicast form, in clusters of two: block r's thread 0 loads at[r] into rows r * rows ..
// of both blocks; each block waits for both halves' bytes on its own barrier, copies them out to
// out + r * 2 * rows * 8, then tells the peer it is done by a remote arrival and waits for the
// peer's, so neither leaves while the other may still write into it (and a cluster barrier
// ends it, as version 8's blocks end). The barriers sit after the tile, where mapa finds them.
__global__ void __launch_bounds__(kThreads)
    tma_im2col_multicast_probe(const __grid_constant__ TensorMap map, Im2colLoad at0,
                               Im2colLoad at1, int rows, uint4* out) {
#if defined(CU3D_WGMMA_DEVICE)
  unsigned char* dynamic = ptx::dynamic_shared_memory();
  auto* full = reinterpret_cast<uint64_t*>(dynamic + 2 * rows * kRowBytes + kSwizzleAtom);
  uint64_t* done = full + 1;
  const uint32_t start = ptx::shared_address(dynamic);
  const uint32_t base = (start + kSwizzleAtom - 1) & ~uint32_t(kSwizzleAtom - 1);
  const uint32_t rank = ptx::cluster_ctarank();
  if (threadIdx.x == 0) {
    ptx::mbarrier_init(full, 1);
    ptx::mbarrier_init(done, 1);
    ptx::fence_mbarrier_init();
  }
  ptx::cluster_sync();
  if (threadIdx.x == 0) {
    const Im2colLoad& at = rank ? at1 : at0;
    ptx::mbarrier_arrive_expect_tx(full, uint32_t(2 * rows * kRowBytes));
    ptx::tma_load_im2col_5d_multicast(base + rank * rows * kRowBytes, &map, full, at.c, at.w, at.h,
                                      at.d, at.n, uint16_t(at.offset.w), uint16_t(at.offset.h),
                                      uint16_t(at.offset.d), 0b11);
  }
  while (!ptx::mbarrier_try_wait(full, 0)) {
  }
  copy_rows_out(dynamic + (base - start), 2 * rows, out + rank * 2 * rows * 8);
  __syncthreads();
  if (threadIdx.x == 0) ptx::mbarrier_arrive_cluster(done, rank ^ 1);
  while (!ptx::mbarrier_try_wait(done, 0)) {
  }
  ptx::cluster_sync();
#else
  __trap();  // not built for sm_90a: the caller checks wgmma_available
#endif
}

}  // namespace

std::vector<unsigned char> tma_im2col_rows(const Im2colMapSpec& spec, const Im2colLoad& at,
                                           cudaStream_t stream) {
  const std::string what = fmt::format("tma_im2col_rows ({} pixels)", spec.pixels);
  const TensorMap map = encode_im2col_map(spec, what);
  const size_t bytes = size_t(spec.pixels) * kRowBytes;
  auto* out = static_cast<uint4*>(malloc_async(bytes, stream));
  const int shared = int(bytes) + kSwizzleAtom;
  allow_shared_memory(tma_im2col_probe, shared);
  tma_im2col_probe<<<1, kThreads, shared, stream>>>(map, at, spec.pixels, out);
  check_launch(what);
  std::vector<unsigned char> rows(bytes);
  CU3D_CUDA_CHECK(cudaMemcpyAsync(rows.data(), out, bytes, cudaMemcpyDeviceToHost, stream));
  free_async(out, stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return rows;
}

ClusterRows tma_im2col_rows_multicast(const Im2colMapSpec& spec, const Im2colLoad (&at)[2],
                                      cudaStream_t stream) {
  const std::string what = fmt::format("tma_im2col_rows_multicast ({} pixels)", spec.pixels);
  CU3D_CHECK(spec.pixels % 8 == 0, "{}: a multiple of 8 rows (the swizzle's period)", what);
  const TensorMap map = encode_im2col_map(spec, what);
  const size_t block_bytes = 2 * size_t(spec.pixels) * kRowBytes;
  auto* out = static_cast<uint4*>(malloc_async(2 * block_bytes, stream));
  const int shared = int(block_bytes) + kSwizzleAtom + 2 * int(sizeof(uint64_t));
  allow_shared_memory(tma_im2col_multicast_probe, shared);
  launch_in_clusters(tma_im2col_multicast_probe, 2, kThreads, size_t(shared), stream, 2, map, at[0],
                     at[1], spec.pixels, out);
  check_launch(what);
  ClusterRows rows;
  for (int r = 0; r < 2; ++r) {
    rows.block[r].resize(block_bytes);
    CU3D_CUDA_CHECK(cudaMemcpyAsync(rows.block[r].data(),
                                    reinterpret_cast<const unsigned char*>(out) + r * block_bytes,
                                    block_bytes, cudaMemcpyDeviceToHost, stream));
  }
  free_async(out, stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return rows;
}

}  // namespace cu3d::cuda
