// The row softmax that softmax_fwd (softmax.cu) and the fused softmax + cross-entropy
// (softmax_xent.cu) share: one warp per row, the row's max and sum of exponentials reduced by
// shuffles. Device code only. Cost per row: reads the row twice (max, then the sum: both
// L1/L2 hits after the first) and writes it once; 2 exp per element.
#pragma once

#include <cuda_runtime.h>

namespace cu3d::cuda {

// 8 warps per block, one row each: enough warps per SM to cover the global-load latency with
// rows as short as a classifier's 101 classes.
constexpr int kSoftmaxWarpsPerBlock = 8;

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

// The row's max and its sum of exp(x - max), both the same in every lane.
struct RowMaxSum {
  float max, sum;
};

// out[j] = exp(in[j] - max) / sum for the `cols` values of one row, lane `lane` of the row's
// warp taking j = lane, lane + 32, ...; returns (max, sum) for a log-sum-exp.
__device__ inline RowMaxSum warp_softmax_row(const float* in, float* out, int cols, int lane) {
  float mx = -INFINITY;
  for (int j = lane; j < cols; j += 32)
    mx = fmaxf(mx, in[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j < cols; j += 32)
    sum += expf(in[j] - mx);
  sum = warp_sum(sum);
  const float inv = 1.f / sum;
  for (int j = lane; j < cols; j += 32)
    out[j] = expf(in[j] - mx) * inv;
  return {mx, sum};
}

}  // namespace cu3d::cuda
