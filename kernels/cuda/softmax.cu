#include "kernels/cuda/softmax.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

// 8 warps per block, one row each: enough warps per SM to cover the global-load latency with
// rows as short as a classifier's 101 classes.
constexpr int kWarpsPerBlock = 8;

__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    softmax_fwd_rows(int64_t rows, int cols, const float* x, float* y) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  if (r >= rows) return;
  const float* xr = x + r * cols;
  float* yr = y + r * cols;
  float mx = -INFINITY;
  for (int j = lane; j < cols; j += 32)
    mx = fmaxf(mx, xr[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j < cols; j += 32)
    sum += expf(xr[j] - mx);
  const float inv = 1.f / warp_sum(sum);
  for (int j = lane; j < cols; j += 32)
    yr[j] = expf(xr[j] - mx) * inv;
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    softmax_bwd_rows(int64_t rows, int cols, const float* y, const float* dy, float* dx) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  if (r >= rows) return;
  const int64_t base = r * cols;
  float dot = 0.f;
  for (int j = lane; j < cols; j += 32)
    dot += dy[base + j] * y[base + j];
  dot = warp_sum(dot);
  for (int j = lane; j < cols; j += 32)
    dx[base + j] = y[base + j] * (dy[base + j] - dot);
}

unsigned blocks_for(const SoftmaxShape& s) {
  return unsigned((s.rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

void softmax_fwd(const SoftmaxShape& s, const float* x, float* y, cudaStream_t stream) {
  if (s.rows == 0) return;
  softmax_fwd_rows<<<blocks_for(s), kWarpsPerBlock * 32, 0, stream>>>(s.rows, s.cols, x, y);
  check_launch(fmt::format("softmax_fwd ({} rows x {} cols)", s.rows, s.cols));
}

void softmax_bwd(const SoftmaxShape& s, const float* y, const float* dy, float* dx,
                 cudaStream_t stream) {
  if (s.rows == 0) return;
  softmax_bwd_rows<<<blocks_for(s), kWarpsPerBlock * 32, 0, stream>>>(s.rows, s.cols, y, dy, dx);
  check_launch(fmt::format("softmax_bwd ({} rows x {} cols)", s.rows, s.cols));
}

}  // namespace cu3d::cuda
