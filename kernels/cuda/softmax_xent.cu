#include "kernels/cuda/softmax_xent.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/warp_softmax.cuh"

namespace cu3d::cuda {
namespace {

// Row r's cross-entropy (the same in every lane of its warp), its softmax written to probs.
__device__ inline float row_xent(int64_t r, int classes, const float* logits, const int32_t* labels,
                                 float* probs, int lane) {
  const float* z = logits + r * classes;
  const RowMaxSum row = warp_softmax_row(z, probs + r * classes, classes, lane);
  const int label = labels[r];
  return label >= 0 && label < classes ? logf(row.sum) - (z[label] - row.max) : NAN;
}

// loss = (sum of row_loss(r) for r < rows) / rows, by one block of 256 threads in a fixed order:
// thread t sums r = t, t + 256, ... in double, then a tree halves the partials. The same bits for
// the same input, whichever kernel calls it.
template <class RowLoss>
__device__ inline void block_mean(int64_t rows, RowLoss row_loss, float* loss) {
  __shared__ double partial[256];
  double acc = 0;
  for (int64_t r = threadIdx.x; r < rows; r += 256)
    acc += row_loss(r);
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned width = 128; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[0] = float(partial[0] / double(rows));
}

__global__ void __launch_bounds__(kSoftmaxWarpsPerBlock * 32)
    softmax_xent_rows(int64_t rows, int classes, const float* logits, const int32_t* labels,
                      float* probs, float* row_loss) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kSoftmaxWarpsPerBlock) + threadIdx.x / 32;
  if (r >= rows) return;
  const float loss = row_xent(r, classes, logits, labels, probs, lane);
  if (lane == 0) row_loss[r] = loss;
}

__global__ void __launch_bounds__(256) mean_loss(int64_t rows, const float* row_loss, float* loss) {
  block_mean(
      rows, [&](int64_t r) { return row_loss[r]; }, loss);
}

// A batch small enough for one block (a classifier's: C3D's 32 x 101 logits): its warps take
// rows warp, warp + 8, ..., the row losses stay in shared memory, and the block sums them as
// mean_loss does. One launch instead of two and no temporary array: the forward is launch-bound
// at this size (15 us for forward and backward on session 7's H200 with two kernels, a
// stream-ordered malloc and free).
constexpr int kOneBlockRows = 256;
constexpr int64_t kOneBlockValues = 64 * 1024;

__global__ void __launch_bounds__(256)
    softmax_xent_one_block(int rows, int classes, const float* logits, const int32_t* labels,
                           float* probs, float* loss) {
  static_assert(kSoftmaxWarpsPerBlock * 32 == 256);
  __shared__ float row_loss[kOneBlockRows];
  const int lane = threadIdx.x % 32;
  for (int r = threadIdx.x / 32; r < rows; r += kSoftmaxWarpsPerBlock) {
    const float l = row_xent(r, classes, logits, labels, probs, lane);
    if (lane == 0) row_loss[r] = l;
  }
  __syncthreads();
  block_mean(
      rows, [&](int64_t r) { return row_loss[r]; }, loss);
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
  if (s.rows <= kOneBlockRows && s.size() <= kOneBlockValues) {
    softmax_xent_one_block<<<1, 256, 0, stream>>>(int(s.rows), s.classes, logits, labels, probs,
                                                  loss);
    check_launch(what);
    return;
  }
  float* row_loss = static_cast<float*>(malloc_async(sizeof(float) * s.rows, stream));
  const int64_t blocks = (s.rows + kSoftmaxWarpsPerBlock - 1) / kSoftmaxWarpsPerBlock;
  softmax_xent_rows<<<unsigned(blocks), kSoftmaxWarpsPerBlock * 32, 0, stream>>>(
      s.rows, s.classes, logits, labels, probs, row_loss);
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
