#include "kernels/cuda/softmax_xent.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;  // 256 threads, one row per warp

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

__global__ void __launch_bounds__(256)
    softmax_xent_rows(int64_t rows, int classes, const float* logits, const int32_t* labels,
                      float* probs, float* row_loss) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  if (r >= rows) return;
  const float* z = logits + r * classes;
  float* p = probs + r * classes;
  float mx = -INFINITY;
  for (int j = lane; j < classes; j += 32)
    mx = fmaxf(mx, z[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j < classes; j += 32)
    sum += expf(z[j] - mx);
  sum = warp_sum(sum);
  const float inv = 1.f / sum;
  for (int j = lane; j < classes; j += 32)
    p[j] = expf(z[j] - mx) * inv;
  if (lane == 0) {
    const int label = labels[r];
    row_loss[r] = label >= 0 && label < classes ? logf(sum) - (z[label] - mx) : NAN;
  }
}

// One block: loss = sum(row_loss) / rows, summed in a fixed order.
__global__ void __launch_bounds__(256) mean_loss(int64_t rows, const float* row_loss, float* loss) {
  __shared__ double partial[256];
  double acc = 0;
  for (int64_t r = threadIdx.x; r < rows; r += 256)
    acc += row_loss[r];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int width = 128; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[0] = float(partial[0] / double(rows));
}

__global__ void __launch_bounds__(256)
    softmax_xent_grad(int64_t rows, int classes, const float* probs, const int32_t* labels,
                      const float* dloss, float* dlogits) {
  const float scale = dloss[0] / float(rows);
  const int64_t n = rows * classes;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / classes;
    const int j = int(i - r * classes);
    dlogits[i] = (probs[i] - (labels[r] == j ? 1.f : 0.f)) * scale;
  }
}

}  // namespace

void softmax_xent_fwd(const SoftmaxXentShape& s, const float* logits, const int32_t* labels,
                      float* probs, float* loss, cudaStream_t stream) {
  const std::string what =
      fmt::format("softmax_xent_fwd ({} rows x {} classes)", s.rows, s.classes);
  float* row_loss = static_cast<float*>(malloc_async(sizeof(float) * s.rows, stream));
  const int64_t blocks = (s.rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  softmax_xent_rows<<<unsigned(blocks), 256, 0, stream>>>(s.rows, s.classes, logits, labels, probs,
                                                          row_loss);
  check_launch(what);
  mean_loss<<<1, 256, 0, stream>>>(s.rows, row_loss, loss);
  check_launch(what);
  free_async(row_loss, stream);
}

void softmax_xent_bwd(const SoftmaxXentShape& s, const float* probs, const int32_t* labels,
                      const float* dloss, float* dlogits, cudaStream_t stream) {
  softmax_xent_grad<<<grid_stride_blocks(s.size()), 256, 0, stream>>>(s.rows, s.classes, probs,
                                                                      labels, dloss, dlogits);
  check_launch(fmt::format("softmax_xent_bwd ({} rows x {} classes)", s.rows, s.classes));
}

}  // namespace cu3d::cuda
