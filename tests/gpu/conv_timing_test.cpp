// Timings of the conv3d passes on C3D's layers, cu3d against cuDNN, per precision, and of the
// fused blocks against cuDNN's conv plus the separate ops they replace: quick tables for
// docs/kernels/conv3d_cuda.md until bench/gpu exists. Runs only when CU3D_GPU_TIMING=1 (and a
// GPU is present), else skips; CU3D_GPU_TIMING_BATCH sets the batch (default 32),
// CU3D_GPU_TIMING_PASSES the conv passes (comma-separated, default all three). Each row:
// median of 10 timed runs after 2 warm-ups, CUDA events around each run, inputs random (never
// zeros).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/cases.h"
#include "gpu/parity.h"
#include "gpu/timing.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cudnn/conv3d.h"

namespace cu3d::parity {
namespace {

int timing_batch() {
  const char* b = std::getenv("CU3D_GPU_TIMING_BATCH");
  return b ? std::atoi(b) : 32;
}

bool pass_selected(const std::string& pass) {
  const char* passes = std::getenv("CU3D_GPU_TIMING_PASSES");
  if (!passes) return true;
  std::string list(",");
  list.append(passes).append(",");
  std::string item(",");
  item.append(pass).append(",");
  return list.find(item) != std::string::npos;
}

TEST(ConvTiming, C3dLayers) {
  if (const std::string reason = timing_skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
  const int batch = timing_batch();
  const cuda::Stream stream;
  const cudaStream_t st = stream.get();
  std::mt19937_64 rng(7);
  std::printf(
      "[ TIMING   ] batch %d; ms (TFLOP/s); ratio = cuDNN time / cu3d time; v3: the "
      "pipelined version 3 where it applies\n",
      batch);
  std::printf("[ TIMING   ] %-7s %-10s %-5s %18s %18s %18s %7s %7s\n", "layer", "pass", "prec",
              "cu3d", "v3", "cudnn", "ratio", "v3 rat");
  for (const auto& layer : cases::c3d_conv_layers(batch)) {
    const Conv3dShape& s = layer.shape;
    const DeviceArray x(random_floats(s.input_size(), rng)), w(random_floats(s.filter_size(), rng));
    const DeviceArray dy(random_floats(s.output_size(), rng)), bias(random_floats(s.k, rng));
    DeviceArray y(s.output_size()), dx(s.input_size()), dw(s.filter_size()), db(s.k);
    const double tflop = 2.0 * double(s.macs()) * 1e-12;
    for (const char* pass : {"fwd", "bwd_data", "bwd_filter"}) {
      if (!pass_selected(pass)) continue;
      for (Precision p : cases::kPrecisions) {
        const std::string ps(pass);
        auto mine = [&] {
          if (ps == "fwd") cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), p, st);
          if (ps == "bwd_data") cuda::conv3d_bwd_data(s, dy.get(), w.get(), dx.get(), p, st);
          if (ps == "bwd_filter")
            cuda::conv3d_bwd_filter(s, x.get(), dy.get(), dw.get(), db.get(), p, st);
        };
        auto theirs = [&] {
          if (ps == "fwd") cudnn::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), p, st);
          if (ps == "bwd_data") cudnn::conv3d_bwd_data(s, dy.get(), w.get(), dx.get(), p, st);
          if (ps == "bwd_filter")
            cudnn::conv3d_bwd_filter(s, x.get(), dy.get(), dw.get(), db.get(), p, st);
        };
        auto pipelined = [&] {
          if (ps == "fwd")
            cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), p, st,
                             cuda::ConvKernel::pipelined);
          if (ps == "bwd_data")
            cuda::conv3d_bwd_data(s, dy.get(), w.get(), dx.get(), p, st,
                                  cuda::ConvKernel::pipelined);
          if (ps == "bwd_filter")
            cuda::conv3d_bwd_filter(s, x.get(), dy.get(), dw.get(), db.get(), p, st,
                                    cuda::ConvKernel::pipelined);
        };
        const bool v3 = (ps == "fwd" && cuda::conv3d_fwd_pipelined_supports(s, p)) ||
                        (ps == "bwd_data" && cuda::conv3d_bwd_data_pipelined_supports(s, p)) ||
                        (ps == "bwd_filter" && cuda::conv3d_bwd_filter_pipelined_supports(s, p));
        const double a = median_ms(st, mine), c = median_ms(st, theirs);
        const double b = v3 ? median_ms(st, pipelined) : 0.0;
        std::printf(
            "[ TIMING   ] %-7s %-10s %-5s %9.3f (%6.1f) %9.3f (%6.1f) %9.3f (%6.1f) %7.2f "
            "%7.2f\n",
            layer.name.c_str(), pass, to_string(p), a, tflop / (a * 1e-3), b,
            v3 ? tflop / (b * 1e-3) : 0.0, c, tflop / (c * 1e-3), c / a, v3 ? c / b : 0.0);
        std::fflush(stdout);
      }
    }
  }
}

// The fused blocks at C3D's conv + pool pairs: cu3d's one kernel (inference, pooled output
// only) against cuDNN's conv (with bias) followed by cu3d's ReLU and max-pool; and the
// layer-norm block (conv + bias + statistics, then normalize/ReLU/pool) against cuDNN's conv
// followed by layer_norm_fwd, ReLU and max-pool. ratio = unfused time / fused time.
TEST(ConvTiming, FusedBlocks) {
  if (const std::string reason = timing_skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
  const int batch = timing_batch();
  const cuda::Stream stream;
  const cudaStream_t st = stream.get();
  std::mt19937_64 rng(11);
  std::printf(
      "[ TIMING   ] batch %d; ms; ratio = unfused (cuDNN conv + ops) / fused cu3d; v3: fused on "
      "the forward's pipelined version (0 where it does not apply)\n",
      batch);
  std::printf("[ TIMING   ] %-7s %-18s %-5s %9s %9s %9s %7s %7s\n", "layer", "block", "prec",
              "fused", "fused v3", "unfused", "ratio", "v3 rat");
  for (const auto& layer : cases::c3d_conv_layers(batch)) {
    if (layer.name != "conv1a" && layer.name != "conv2a" && layer.name != "conv3b" &&
        layer.name != "conv4b" && layer.name != "conv5b")
      continue;
    const Conv3dShape& s = layer.shape;
    const bool first = layer.name == "conv1a";
    const Dims3 window = first ? Dims3{1, 2, 2} : Dims3{2, 2, 2};
    const Dims3 pad = layer.name == "conv5b" ? Dims3{0, 1, 1} : Dims3{0, 0, 0};
    const Pool3dShape p =
        Pool3dShape::make(s.n, s.out, s.k, window, window, Padding::explicit_, pad);
    const DeviceArray x(random_floats(s.input_size(), rng)), w(random_floats(s.filter_size(), rng));
    const DeviceArray bias(random_floats(s.k, rng)), gamma(random_floats(s.k, rng));
    const DeviceArray beta(random_floats(s.k, rng));
    DeviceArray y(s.output_size()), z(s.output_size()), pooled(p.output_size());
    const int64_t positions = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
    const cpu::LayerNormShape ln{s.n, positions / s.n, s.k};
    DeviceArray mean(s.n), rstd(s.n);
    for (Precision prec : cases::kPrecisions) {
      const bool v3 = cuda::conv3d_fwd_pipelined_supports(s, prec);
      auto fused_ms = [&](cuda::ConvKernel kernel) {
        return median_ms(st, [&] {
          cuda::conv3d_fwd_bias_relu_maxpool(s, p, x.get(), w.get(), bias.get(), pooled.get(),
                                             nullptr, prec, st, kernel);
        });
      };
      const double fused = fused_ms(cuda::ConvKernel::implicit_gemm);
      const double fused_v3 = v3 ? fused_ms(cuda::ConvKernel::pipelined) : 0.0;
      const double unfused = median_ms(st, [&] {
        cudnn::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), prec, st);
        cuda::relu_fwd(s.output_size(), y.get(), y.get(), st);
        cuda::maxpool3d_fwd(p, y.get(), pooled.get(), st);
      });
      std::printf("[ TIMING   ] %-7s %-18s %-5s %9.3f %9.3f %9.3f %7.2f %7.2f\n",
                  layer.name.c_str(), "bias_relu_pool", to_string(prec), fused, fused_v3, unfused,
                  unfused / fused, v3 ? unfused / fused_v3 : 0.0);
      auto ln_fused_ms = [&](cuda::ConvKernel kernel) {
        return median_ms(st, [&] {
          cuda::conv3d_fwd_bias_ln_stats(s, x.get(), w.get(), bias.get(), ln.m, 1e-5f, y.get(),
                                         mean.get(), rstd.get(), prec, st, kernel);
          cuda::layer_norm_relu_maxpool_fwd(p, ln.m, y.get(), gamma.get(), beta.get(), mean.get(),
                                            rstd.get(), pooled.get(), nullptr, st);
        });
      };
      const double ln_fused = ln_fused_ms(cuda::ConvKernel::implicit_gemm);
      const double ln_fused_v3 = v3 ? ln_fused_ms(cuda::ConvKernel::pipelined) : 0.0;
      const double ln_unfused = median_ms(st, [&] {
        cudnn::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), prec, st);
        cuda::layer_norm_fwd(ln, y.get(), gamma.get(), beta.get(), 1e-5f, z.get(), mean.get(),
                             rstd.get(), st);
        cuda::relu_fwd(s.output_size(), z.get(), z.get(), st);
        cuda::maxpool3d_fwd(p, z.get(), pooled.get(), st);
      });
      std::printf("[ TIMING   ] %-7s %-18s %-5s %9.3f %9.3f %9.3f %7.2f %7.2f\n",
                  layer.name.c_str(), "bias_ln_relu_pool", to_string(prec), ln_fused, ln_fused_v3,
                  ln_unfused, ln_unfused / ln_fused, v3 ? ln_unfused / ln_fused_v3 : 0.0);
      std::fflush(stdout);
    }
  }
}

}  // namespace
}  // namespace cu3d::parity
