#include "kernels/cuda/sgd.cuh"

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

constexpr int kThreads = 256;  // memory-bound: any full-occupancy block size does

__global__ void __launch_bounds__(kThreads)
    sgd_kernel(int64_t n, float* param, const float* grad, float* buf, float lr, float momentum,
               float weight_decay, bool nesterov) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float g = grad[i] + weight_decay * param[i];
    if (buf) {
      const float b = momentum * buf[i] + g;
      buf[i] = b;
      g = nesterov ? g + momentum * b : b;
    }
    param[i] -= lr * g;
  }
}

}  // namespace

void sgd_step(int64_t n, float* param, const float* grad, float* momentum_buf, double lr,
              double momentum, double weight_decay, bool nesterov, cudaStream_t stream) {
  // The CPU's checks (kernels/cpu/optimizer.cpp): the same call fails the same way on either.
  CU3D_CHECK(momentum == 0.0 || momentum_buf != nullptr,
             "sgd_step: momentum = {} needs a momentum buffer of {} elements", momentum, n);
  CU3D_CHECK(!nesterov || momentum > 0.0, "sgd_step: Nesterov momentum needs momentum > 0");
  if (n == 0) return;
  float* buf = momentum != 0 ? momentum_buf : nullptr;
  sgd_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, stream>>>(
      n, param, grad, buf, float(lr), float(momentum), float(weight_decay), nesterov);
  check_launch(fmt::format("sgd_step (n={})", n));
}

}  // namespace cu3d::cuda
