#include "kernels/cuda/cast.cuh"

#include <fmt/format.h>

#include "kernels/cuda/conv3d_geometry.h"
#include "kernels/cuda/ptx.cuh"
#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

__global__ void __launch_bounds__(256)
    fp32_to_bf16_kernel(const float* src, __nv_bfloat16* dst, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

__global__ void __launch_bounds__(256)
    bf16_to_fp32_kernel(const __nv_bfloat16* src, float* dst, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = __bfloat162float(src[i]);
}

__global__ void __launch_bounds__(256)
    fp32_to_tf32_kernel(const float* src, float* dst, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = __uint_as_float(ptx::to_tf32(src[i]));
}

// One float4 of src per step: its row and column by a fast division (4 instructions where a 64-bit
// one takes ~70, more than a memory-bound step can hide), then three float4 stores into the
// row's copies.
__global__ void __launch_bounds__(256)
    fp32_to_tf32_split_kernel(const float4* src, float4* dst, uint32_t count,
                              igemm::FastDiv per_row, bool tail_second) {
  for (uint32_t q = blockIdx.x * blockDim.x + threadIdx.x; q < count; q += gridDim.x * blockDim.x) {
    uint32_t col;
    const uint32_t row = per_row.divmod(q, &col);
    const float4 v = src[q];
    float4 head, tail;
    float* h = &head.x;
    float* t = &tail.x;
    const float* e = &v.x;
    for (int i = 0; i < 4; ++i) {
      h[i] = __uint_as_float(ptx::to_tf32(e[i]));
      t[i] = __uint_as_float(ptx::to_tf32(e[i] - h[i]));
    }
    float4* out = dst + int64_t(row) * 3 * per_row.d + col;
    out[0] = head;
    out[per_row.d] = tail_second ? tail : head;
    out[2 * per_row.d] = tail_second ? head : tail;
  }
}

}  // namespace

void fp32_to_bf16(const float* src, __nv_bfloat16* dst, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  fp32_to_bf16_kernel<<<grid_stride_blocks(count), 256, 0, stream>>>(src, dst, count);
  check_launch(fmt::format("fp32_to_bf16 ({} elements)", count));
}

void bf16_to_fp32(const __nv_bfloat16* src, float* dst, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  bf16_to_fp32_kernel<<<grid_stride_blocks(count), 256, 0, stream>>>(src, dst, count);
  check_launch(fmt::format("bf16_to_fp32 ({} elements)", count));
}

void fp32_to_tf32(const float* src, float* dst, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  fp32_to_tf32_kernel<<<grid_stride_blocks(count), 256, 0, stream>>>(src, dst, count);
  check_launch(fmt::format("fp32_to_tf32 ({} elements)", count));
}

void fp32_to_tf32_split(const float* src, float* dst, int64_t rows, int c, Tf32Split order,
                        cudaStream_t stream) {
  const std::string what = fmt::format("fp32_to_tf32_split ({} rows of {})", rows, c);
  CU3D_CHECK(c > 0 && c % 4 == 0 && rows * c / 4 < (int64_t(1) << 31),
             "{}: takes rows of a multiple of 4 values, fewer than 2^33 values in all", what);
  if (rows == 0) return;
  const int64_t count = rows * c / 4;
  fp32_to_tf32_split_kernel<<<grid_stride_blocks(count), 256, 0, stream>>>(
      reinterpret_cast<const float4*>(src), reinterpret_cast<float4*>(dst), uint32_t(count),
      igemm::FastDiv(uint32_t(c / 4)), order == Tf32Split::head_tail_head);
  check_launch(what);
}

}  // namespace cu3d::cuda
