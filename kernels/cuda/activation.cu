#include "kernels/cuda/activation.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"
#include "kernels/philox.h"

namespace cu3d::cuda {
namespace {

// Grid-stride map over n elements; `f(i)` computes and stores element i.
template <class F>
__global__ void __launch_bounds__(256) elementwise_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}

template <class F>
void launch(const char* op, int64_t n, cudaStream_t stream, F f) {
  if (n == 0) return;
  elementwise_kernel<<<grid_stride_blocks(n), 256, 0, stream>>>(n, f);
  check_launch(fmt::format("{} ({} elements)", op, n));
}

// Dropout: thread b handles elements 4b..4b+3 with one Philox block, the CPU's mapping.
__global__ void __launch_bounds__(256)
    dropout_kernel(int64_t n, const float* in, uint32_t threshold, float scale, uint64_t seed,
                   uint64_t offset, float* out) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const Philox4x32Counter r = philox_block_at(seed, offset, uint64_t(b));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      if (i < n) out[i] = dropout_keeps(r.v[j], threshold) ? in[i] * scale : 0.f;
    }
  }
}

void dropout(const char* op, int64_t n, const float* in, double p, uint64_t seed, uint64_t offset,
             float* out, cudaStream_t stream) {
  CU3D_CHECK(p >= 0.0 && p < 1.0, "{}: rate p = {} is outside [0, 1)", op, p);
  if (n == 0) return;
  const float scale = float(1.0 / (1.0 - p));
  dropout_kernel<<<grid_stride_blocks((n + 3) / 4), 256, 0, stream>>>(n, in, dropout_threshold(p),
                                                                      scale, seed, offset, out);
  check_launch(fmt::format("{} ({} elements, p {})", op, n, p));
}

}  // namespace

void relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream) {
  launch("relu_fwd", n, stream, [=] __device__(int64_t i) { y[i] = x[i] > 0.f ? x[i] : 0.f; });
}

void relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  launch("relu_bwd", n, stream, [=] __device__(int64_t i) { dx[i] = y[i] > 0.f ? dy[i] : 0.f; });
}

void leaky_relu_fwd(int64_t n, const float* x, float alpha, float* y, cudaStream_t stream) {
  launch("leaky_relu_fwd", n, stream,
         [=] __device__(int64_t i) { y[i] = x[i] > 0.f ? x[i] : alpha * x[i]; });
}

void leaky_relu_bwd(int64_t n, const float* y, float alpha, const float* dy, float* dx,
                    cudaStream_t stream) {
  CU3D_CHECK(alpha >= 0.f,
             "leaky_relu_bwd: alpha = {} is negative; the backward pass reads the sign of the "
             "output, which needs alpha >= 0",
             alpha);
  launch("leaky_relu_bwd", n, stream,
         [=] __device__(int64_t i) { dx[i] = y[i] > 0.f ? dy[i] : alpha * dy[i]; });
}

// exp of a non-positive argument only (never overflows), as the CPU version.
void sigmoid_fwd(int64_t n, const float* x, float* y, cudaStream_t stream) {
  launch("sigmoid_fwd", n, stream, [=] __device__(int64_t i) {
    const float e = expf(-fabsf(x[i]));
    y[i] = x[i] >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
  });
}

void sigmoid_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  launch("sigmoid_bwd", n, stream,
         [=] __device__(int64_t i) { dx[i] = dy[i] * y[i] * (1.f - y[i]); });
}

void dropout_fwd(int64_t n, const float* x, double p, uint64_t seed, uint64_t offset, float* y,
                 cudaStream_t stream) {
  dropout("dropout_fwd", n, x, p, seed, offset, y, stream);
}

void dropout_bwd(int64_t n, const float* dy, double p, uint64_t seed, uint64_t offset, float* dx,
                 cudaStream_t stream) {
  dropout("dropout_bwd", n, dy, p, seed, offset, dx, stream);
}

}  // namespace cu3d::cuda
