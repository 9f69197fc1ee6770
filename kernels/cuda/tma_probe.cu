// One im2col load, copied back (tma_probe.cuh).
#include <fmt/format.h>

#include "kernels/cuda/ptx.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tma_probe.cuh"

namespace cu3d::cuda {
namespace {

constexpr int kRowBytes = 128, kSwizzleAtom = 1024, kThreads = 128;

// Thread 0 loads the box into 1 KB aligned dynamic shared memory and every thread waits for its
// bytes; then the block copies it out, chunk j of row i from where the 128-byte swizzle put it
// (chunk j ^ (i % 8)).
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
  const unsigned char* box = dynamic + (base - start);
  for (int q = threadIdx.x; q < rows * 8; q += blockDim.x) {
    const int row = q / 8, chunk = q % 8;
    out[q] = *reinterpret_cast<const uint4*>(box + row * kRowBytes + 16 * (chunk ^ (row % 8)));
  }
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

}  // namespace cu3d::cuda
