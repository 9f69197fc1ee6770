#include "kernels/cuda/softmax_xent.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/warp_softmax.cuh"

namespace cu3d::cuda {
namespace {

__global__ void __launch_bounds__(kSoftmaxWarpsPerBlock * 32)
    softmax_xent_rows(int64_t rows, int classes, const float* logits, const int32_t* labels,
                      float* probs, float* row_loss) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * int64_t(kSoftmaxWarpsPerBlock) + threadIdx.x / 32;
  if (r >= rows) return;
  const float* z = logits + r * classes;
  const RowMaxSum row = warp_softmax_row(z, probs + r * classes, classes, lane);
  if (lane == 0) {
    const int label = labels[r];
    row_loss[r] = label >= 0 && label < classes ? logf(row.sum) - (z[label] - row.max) : NAN;
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
