#include "kernels/cuda/softmax.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/warp_softmax.cuh"

namespace cu3d::cuda {
namespace {

__global__ void __launch_bounds__(kSoftmaxWarpsPerBlock * 32)
    softmax_fwd_rows(int64_t rows, int cols, const float* x, float* y) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kSoftmaxWarpsPerBlock) + threadIdx.x / 32;
  if (r >= rows) return;
  warp_softmax_row(x + r * cols, y + r * cols, cols, lane);
}

__global__ void __launch_bounds__(kSoftmaxWarpsPerBlock * 32)
    softmax_bwd_rows(int64_t rows, int cols, const float* y, const float* dy, float* dx) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kSoftmaxWarpsPerBlock) + threadIdx.x / 32;
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
  return unsigned((s.rows + kSoftmaxWarpsPerBlock - 1) / kSoftmaxWarpsPerBlock);
}

}  // namespace

void softmax_fwd(const SoftmaxShape& s, const float* x, float* y, cudaStream_t stream) {
  if (s.rows == 0) return;
  softmax_fwd_rows<<<blocks_for(s), kSoftmaxWarpsPerBlock * 32, 0, stream>>>(s.rows, s.cols, x, y);
  check_launch(fmt::format("softmax_fwd ({} rows x {} cols)", s.rows, s.cols));
}

void softmax_bwd(const SoftmaxShape& s, const float* y, const float* dy, float* dx,
                 cudaStream_t stream) {
  if (s.rows == 0) return;
  softmax_bwd_rows<<<blocks_for(s), kSoftmaxWarpsPerBlock * 32, 0, stream>>>(s.rows, s.cols, y, dy,
                                                                             dx);
  check_launch(fmt::format("softmax_bwd ({} rows x {} cols)", s.rows, s.cols));
}

}  // namespace cu3d::cuda
