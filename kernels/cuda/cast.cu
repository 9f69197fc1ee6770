#include "kernels/cuda/cast.cuh"

#include <fmt/format.h>

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

}  // namespace cu3d::cuda
