#include "kernels/cuda/elementwise.cuh"

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

// 256 threads: enough warps per block to hide memory latency, few enough for 8 blocks per SM.
constexpr int kThreads = 256;

template <typename Op>
__global__ void __launch_bounds__(kThreads) map_kernel(int64_t n, Op op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    op(i);
}

template <typename Op>
void launch_map(const char* name, int64_t n, Op op, cudaStream_t stream) {
  if (n == 0) return;
  map_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, stream>>>(n, op);
  check_launch(fmt::format("{} (n={})", name, n));
}

// Fixed block count for the first pass of `sum`, so the order of additions never changes.
constexpr int kSumBlocks = 256;

__global__ void __launch_bounds__(kThreads)
    partial_sums(int64_t n, const float* x, double* partial) {
  __shared__ double block[kThreads];
  double total = 0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n;
       i += int64_t(kSumBlocks) * kThreads)
    total += x[i];
  block[threadIdx.x] = total;
  __syncthreads();
  for (unsigned half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) block[threadIdx.x] += block[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = block[0];
}

__global__ void __launch_bounds__(kSumBlocks) final_sum(const double* partial, float* result) {
  __shared__ double block[kSumBlocks];
  block[threadIdx.x] = partial[threadIdx.x];
  __syncthreads();
  for (unsigned half = kSumBlocks / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) block[threadIdx.x] += block[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *result = float(block[0]);
}

}  // namespace

void add(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  launch_map(
      "add", n, [=] __device__(int64_t i) { y[i] = a[i] + b[i]; }, stream);
}

void mul(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  launch_map(
      "mul", n, [=] __device__(int64_t i) { y[i] = a[i] * b[i]; }, stream);
}

void scale(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream) {
  launch_map(
      "scale", n, [=] __device__(int64_t i) { y[i] = alpha * x[i]; }, stream);
}

void accumulate(int64_t n, const float* x, float* y, cudaStream_t stream) {
  launch_map(
      "accumulate", n, [=] __device__(int64_t i) { y[i] += x[i]; }, stream);
}

void sum(int64_t n, const float* x, float* result, cudaStream_t stream) {
  double* partial = static_cast<double*>(malloc_async(kSumBlocks * sizeof(double), stream));
  partial_sums<<<kSumBlocks, kThreads, 0, stream>>>(n, x, partial);
  check_launch(fmt::format("sum partials (n={})", n));
  final_sum<<<1, kSumBlocks, 0, stream>>>(partial, result);
  check_launch("sum final");
  free_async(partial, stream);
}

}  // namespace cu3d::cuda
