#include "kernels/cuda/optimizer.cuh"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

// Tensors per launch: the table travels as a kernel parameter (32 * 40 + 33 * 8 bytes, well
// under the 4 KB parameter limit), so no host-to-device copy precedes the launch.
constexpr int kMaxTensors = 32;
constexpr int kElemsPerBlock = 2048;  // 256 threads x 8 elements

struct AdamBatch {
  AdamTensor t[kMaxTensors];
  int64_t first_block[kMaxTensors + 1];  // block range of each tensor
  int count;
};

struct AdamScalars {
  float step_size, inv_sqrt_bc2, b1, b2, eps, decay, l2;
};

__global__ void __launch_bounds__(256) adam_kernel(AdamBatch batch, AdamScalars s) {
  int k = 0;
  while (k + 1 < batch.count && blockIdx.x >= batch.first_block[k + 1])
    ++k;
  const AdamTensor& t = batch.t[k];
  const int64_t begin = (blockIdx.x - batch.first_block[k]) * int64_t(kElemsPerBlock);
  const int64_t end = min(t.n, begin + kElemsPerBlock);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float p = t.param[i];
    const float g = t.grad[i] + s.l2 * p;
    const float mi = s.b1 * t.m[i] + (1.f - s.b1) * g;
    const float vi = s.b2 * t.v[i] + (1.f - s.b2) * g * g;
    t.m[i] = mi;
    t.v[i] = vi;
    t.param[i] = p * s.decay - s.step_size * mi / (sqrtf(vi) * s.inv_sqrt_bc2 + s.eps);
  }
}

}  // namespace

void adam_step(const std::vector<AdamTensor>& tensors, const AdamConfig& c, int64_t step,
               cudaStream_t stream) {
  CU3D_CHECK(step >= 1, "adam_step: step = {}; steps count from 1", step);
  CU3D_CHECK(c.beta1 >= 0.0 && c.beta1 < 1.0 && c.beta2 >= 0.0 && c.beta2 < 1.0,
             "adam_step: betas ({}, {}) must lie in [0, 1)", c.beta1, c.beta2);
  // Bias corrections in double, then fp32, exactly as the CPU version.
  AdamScalars s;
  s.step_size = float(c.lr / (1.0 - std::pow(c.beta1, double(step))));
  s.inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(c.beta2, double(step))));
  s.b1 = float(c.beta1), s.b2 = float(c.beta2), s.eps = float(c.eps);
  s.decay = c.decoupled ? float(1.0 - c.lr * c.weight_decay) : 1.f;
  s.l2 = c.decoupled ? 0.f : float(c.weight_decay);
  for (size_t first = 0; first < tensors.size(); first += kMaxTensors) {
    AdamBatch batch{};
    batch.count = int(std::min<size_t>(kMaxTensors, tensors.size() - first));
    for (int k = 0; k < batch.count; ++k) {
      batch.t[k] = tensors[first + k];
      batch.first_block[k + 1] =
          batch.first_block[k] + (batch.t[k].n + kElemsPerBlock - 1) / kElemsPerBlock;
    }
    const int64_t blocks = batch.first_block[batch.count];
    if (blocks == 0) continue;
    adam_kernel<<<unsigned(blocks), 256, 0, stream>>>(batch, s);
    check_launch(fmt::format("adam_step ({} tensors, step {})", batch.count, step));
  }
}

}  // namespace cu3d::cuda
