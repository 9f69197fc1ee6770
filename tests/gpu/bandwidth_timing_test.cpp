// Effective bandwidth of the memory-bound CUDA kernels against the device-to-device copy, the
// issue's measure for them (≥ 80 % of the copy's bandwidth for the bytes they must move).
// Runs only with CU3D_GPU_TIMING=1 (scripts/gpu-check.sh's timing stage), else skips.
//
// "Must move" is the minimum: every input read once and every output written once (a
// two-pass kernel that reads x twice counts only one read), so a kernel at 100 % would be
// one streaming pass. Shapes: pool2's input at batch 8 (8x16x56x56x128, 205 MB of fp32) for
// the per-element ops, C3D's uint8 clips at batch 32 for the input transform, 78 M
// parameters (C3D's count) for Adam. Median of 10 runs after 2 warm-ups.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/parity.h"
#include "gpu/timing.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/input_transform.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cuda/softmax.cuh"

namespace cu3d::parity {
namespace {

TEST(BandwidthTiming, MemoryBoundOps) {
  if (const std::string reason = timing_skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
  const cuda::Stream stream;
  const cudaStream_t st = stream.get();
  std::mt19937_64 rng(13);

  const Pool3dShape pool =
      Pool3dShape::make(8, {16, 56, 56}, 128, {2, 2, 2}, {2, 2, 2}, Padding::valid);
  const int64_t n = pool.input_size();
  const DeviceArray x(random_floats(n, rng, 0.5f, 2.5f)), gamma(random_floats(128, rng));
  const DeviceArray beta(random_floats(128, rng)), rvar(random_floats(128, rng, 0.5f, 2.f));
  DeviceArray y(n), small(pool.output_size()), stats(2 * 128), rmean(random_floats(128, rng));
  DeviceArray mean(8), rstd(8);

  const double copy_ms = median_ms(st, [&] {
    CU3D_CUDA_CHECK(
        cudaMemcpyAsync(y.get(), x.get(), sizeof(float) * n, cudaMemcpyDeviceToDevice, st));
  });
  const double copy_gbs = 8.0 * n / (copy_ms * 1e6);
  std::printf("[ TIMING   ] %-28s %9s %9s %9s %7s\n", "op (bytes it must move)", "ms", "MB", "GB/s",
              "% copy");
  auto report = [&](const char* op, double bytes, const std::function<void()>& f) {
    const double ms = median_ms(st, f);
    const double gbs = bytes / (ms * 1e6);
    std::printf("[ TIMING   ] %-28s %9.3f %9.1f %9.1f %6.1f%%\n", op, ms, bytes / 1e6, gbs,
                100.0 * gbs / copy_gbs);
    std::fflush(stdout);
  };
  report("copy d2d (read + write)", 8.0 * n, [&] {
    CU3D_CUDA_CHECK(
        cudaMemcpyAsync(y.get(), x.get(), sizeof(float) * n, cudaMemcpyDeviceToDevice, st));
  });
  report("relu_fwd", 8.0 * n, [&] { cuda::relu_fwd(n, x.get(), y.get(), st); });
  report("maxpool3d_fwd 2x2x2", 4.0 * (n + pool.output_size()),
         [&] { cuda::maxpool3d_fwd(pool, x.get(), small.get(), st); });
  const cpu::LayerNormShape ln{8, n / 8 / 128, 128};
  report("layer_norm_fwd per sample", 8.0 * n, [&] {
    cuda::layer_norm_fwd(ln, x.get(), gamma.get(), beta.get(), 1e-5f, y.get(), mean.get(),
                         rstd.get(), st);
  });
  report("ln_relu_maxpool (inference)", 4.0 * (n + pool.output_size()), [&] {
    cuda::layer_norm_relu_maxpool_fwd(pool, n / 8 / 128, x.get(), gamma.get(), beta.get(),
                                      mean.get(), rstd.get(), small.get(), nullptr, st);
  });
  const cpu::BatchNormShape bn{n / 128, 128};
  report("batch_norm_fwd_train", 8.0 * n, [&] {
    cuda::batch_norm_fwd_train(bn, x.get(), gamma.get(), beta.get(), 1e-5f, 0.1f, y.get(),
                               stats.get(), stats.get() + 128, rmean.get(), rvar.get(), st);
  });
  report("softmax_fwd (rows of 128)", 8.0 * n, [&] {
    cuda::softmax_fwd({n / 128, 128}, x.get(), y.get(), st);
  });

  const cuda::InputTransformShape it{32, 16, 128, 171, 3, 112, 112};
  std::vector<uint8_t> frames(it.input_size());
  for (auto& v : frames)
    v = uint8_t(rng());
  const DeviceCopy<uint8_t> gframes(frames), gflips(std::vector<uint8_t>(it.n, 1));
  const DeviceCopy<int32_t> gcrops(std::vector<int32_t>(2 * it.n, 4));  // inside 128x171
  DeviceArray clips(it.output_size());
  report("input_transform (u8 -> f32)", 5.0 * it.output_size(), [&] {
    cuda::input_transform(it, gframes.get(), gcrops.get(), gflips.get(), gamma.get(), 1.f / 58,
                          clips.get(), st);
  });

  const int64_t params = 78'000'000;
  DeviceArray p(random_floats(params, rng)), g(random_floats(params, rng));
  DeviceArray m(random_floats(params, rng)), v(random_floats(params, rng, 0.f, 1.f));
  const std::vector<cuda::AdamTensor> tensors = {{p.get(), g.get(), m.get(), v.get(), params}};
  report("adam_step (28 B/param)", 28.0 * params,
         [&] { cuda::adam_step(tensors, cuda::AdamConfig{}, 1, st); });
}

}  // namespace
}  // namespace cu3d::parity
