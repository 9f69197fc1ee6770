// Parity cases of the fused conv blocks against the unfused CPU chain in double:
//   conv3d_fwd_bias_relu_maxpool   conv + bias -> ReLU -> max-pool (inference: pooled only;
//                                  training: also z = relu(conv + bias))
//   conv3d_fwd_bias_ln_stats       conv + bias with the layer-norm statistics, then
//   + layer_norm_relu_maxpool_fwd  normalize + scale/offset + ReLU + pool (the C3D-LN block)
// per precision, on C3D layers at batch 2 with the pools that follow them, and odd shapes.
#include <algorithm>

#include <fmt/format.h>

#include "gpu/cases.h"
#include "gpu/parity.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/layer_norm.h"
#include "kernels/cpu/pool3d.h"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/layer_norm.cuh"

namespace cu3d::parity {
namespace {

struct Block {
  std::string name;
  Conv3dShape conv;
  Pool3dShape pool;
  bool per_sample;  // layer-norm groups: per sample, or per position
};

int64_t positions(const Conv3dShape& s) {
  return int64_t(s.n) * s.out.d * s.out.h * s.out.w;
}

std::vector<Compared> run_conv_relu_pool(const Block& b, bool training, Precision p,
                                         cuda::ConvKernel kernel, std::mt19937_64& rng,
                                         cudaStream_t stream) {
  const Conv3dShape& s = b.conv;
  const auto x = random_floats(s.input_size(), rng), w = random_floats(s.filter_size(), rng);
  const auto bias = random_floats(s.k, rng);
  std::vector<double> z(s.output_size()), pooled(b.pool.output_size());
  cpu::conv3d_fwd<double>(s, to_double(x).data(), to_double(w).data(), to_double(bias).data(),
                          z.data());
  for (double& v : z)
    v = std::max(v, 0.0);
  cpu::maxpool3d_fwd<double>(b.pool, z.data(), pooled.data());

  const DeviceArray gx(x), gw(w), gb(bias);
  DeviceArray gpooled(b.pool.output_size()), gz(s.output_size());
  gpooled.poison();
  gz.poison();
  cuda::conv3d_fwd_bias_relu_maxpool(s, b.pool, gx.get(), gw.get(), gb.get(), gpooled.get(),
                                     training ? gz.get() : nullptr, p, stream, kernel);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<Compared> r = {compare("pooled", gpooled.download(), pooled)};
  if (training) r.push_back(compare("z", gz.download(), z));
  return r;
}

std::vector<Compared> run_conv_ln_block(const Block& b, Precision p, cuda::ConvKernel kernel,
                                        std::mt19937_64& rng, cudaStream_t stream) {
  const Conv3dShape& s = b.conv;
  // Inputs with a positive mean (after a ReLU). Per sample, filters with a positive mean too:
  // the statistics then have a mean far from zero (~30x the standard deviation), which the
  // epilogue's partial sums must keep. Not per position: there every channel of a position
  // would share that offset, and the fp32 conv's own rounding (~1e-7 of the offset) would
  // exceed 1e-5 of the small spread the normalization divides by; zero-mean filters instead.
  const auto x = random_floats(s.input_size(), rng, 0.f, 1.f);
  const auto w = random_floats(s.filter_size(), rng, b.per_sample ? -0.5f : -1.f, 1.f);
  const auto bias = random_floats(s.k, rng), beta = random_floats(s.k, rng);
  const auto gamma = random_floats(s.k, rng, 0.5f, 1.5f);
  const float eps = 1e-5f;
  const int64_t m = b.per_sample ? positions(s) / s.n : 1;
  const cpu::LayerNormShape ln{positions(s) / m, m, s.k};
  std::vector<double> y(s.output_size()), z(s.output_size()), mean(ln.groups), rstd(ln.groups);
  std::vector<double> pooled(b.pool.output_size());
  cpu::conv3d_fwd<double>(s, to_double(x).data(), to_double(w).data(), to_double(bias).data(),
                          y.data());
  cpu::layer_norm_fwd<double>(ln, y.data(), to_double(gamma).data(), to_double(beta).data(), eps,
                              z.data(), mean.data(), rstd.data());
  for (double& v : z)
    v = std::max(v, 0.0);
  cpu::maxpool3d_fwd<double>(b.pool, z.data(), pooled.data());

  const DeviceArray gx(x), gw(w), gb(bias), gg(gamma), gbeta(beta);
  DeviceArray gy(s.output_size()), gmean(ln.groups), grstd(ln.groups), gp(b.pool.output_size());
  for (DeviceArray* a : {&gy, &gmean, &grstd, &gp})
    a->poison();
  cuda::conv3d_fwd_bias_ln_stats(s, gx.get(), gw.get(), gb.get(), m, eps, gy.get(), gmean.get(),
                                 grstd.get(), p, stream, kernel);
  cuda::layer_norm_relu_maxpool_fwd(b.pool, m, gy.get(), gg.get(), gbeta.get(), gmean.get(),
                                    grstd.get(), gp.get(), nullptr, stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", gy.download(), y), compare("mean", gmean.download(), mean),
          compare("rstd", grstd.download(), rstd), compare("pooled", gp.download(), pooled)};
}

// The conv layer `name` of the C3D list at batch 2 (or an odd shape) followed by a pool.
Conv3dShape conv_named(const std::string& name) {
  for (const auto& l : cases::all_conv_layers())
    if (l.name == name) return l.shape;
  throw Error("parity_fused: no conv layer " + name);
}

Block block_of(const std::string& name, const Conv3dShape& c, Dims3 window, Dims3 stride,
               Padding padding, Dims3 pad = {0, 0, 0}, bool ceil_mode = false,
               bool per_sample = true) {
  const Pool3dShape p = Pool3dShape::make(c.n, c.out, c.k, window, stride, padding, pad, ceil_mode);
  return {name, c, p, per_sample};
}

Block block(const std::string& conv_name, Dims3 window, Dims3 stride, Padding padding,
            Dims3 pad = {0, 0, 0}, bool ceil_mode = false, bool per_sample = true) {
  return block_of(conv_name, conv_named(conv_name), window, stride, padding, pad, ceil_mode,
                  per_sample);
}

}  // namespace

std::vector<ParityCase> fused_cases() {
  const Dims3 none{0, 0, 0};
  // C3D's conv + pool pairs (pool1 is 1x2x2, pool5 pads h and w), and odd ones: an
  // overlapping padded pool after 3 input channels, a ceil-mode pool after 130 filters (a
  // partial 64-column tile), and windows that tile the output (the window-major epilogue)
  // with 70 filters and 480 rows (partial tiles in both directions), on 12 channels and on 64
  // (which the forward's version 3 takes).
  const auto c_k70 = [](int c) {
    return Conv3dShape::make(2, {4, 6, 10}, c, 70, {3, 3, 3}, {1, 1, 1}, Padding::explicit_,
                             {1, 1, 1});
  };
  const Block pool_blocks[] = {
      block_of("odd_c12_k70", c_k70(12), {2, 2, 2}, {2, 2, 2}, Padding::valid),
      block_of("odd_c64_k70", c_k70(64), {2, 2, 2}, {2, 2, 2}, Padding::valid),
      block("conv1a", {1, 2, 2}, {1, 2, 2}, Padding::valid),
      // conv2a: at batch 2 its grid is the one that takes version 5's 256-row tile on a GPU of
      // up to 392 SMs; the smaller shapes take the 128-row one.
      block("conv2a", {2, 2, 2}, {2, 2, 2}, Padding::valid),
      block("conv3b", {2, 2, 2}, {2, 2, 2}, Padding::valid),
      block("conv5b", {2, 2, 2}, {2, 2, 2}, Padding::explicit_, {0, 1, 1}),
      block("odd_c3_k5", {3, 3, 3}, {2, 2, 2}, Padding::explicit_, {1, 1, 1}),
      block("odd_c132_k130", {2, 2, 2}, {2, 2, 2}, Padding::explicit_, none, true),
  };
  // The layer-norm C3D: per sample after conv2a, per position after conv3b; odd shapes.
  const Block ln_blocks[] = {
      block("conv2a", {2, 2, 2}, {2, 2, 2}, Padding::valid, none, false, true),
      block("conv3b", {2, 2, 2}, {2, 2, 2}, Padding::valid, none, false, false),
      block("odd_c3_k5", {3, 3, 3}, {2, 2, 2}, Padding::explicit_, {1, 1, 1}, false, true),
      block("odd_c132_k130", {2, 2, 2}, {2, 2, 2}, Padding::explicit_, none, true, false),
      block_of("odd_c64_k70", c_k70(64), {2, 2, 2}, {2, 2, 2}, Padding::valid, none, false, false),
  };
  // Each block on the forward's version 2 and, where they apply, versions 3-7 (version 4 on the
  // pool blocks only: it runs the conv's store before a pool kernel (training, and inference
  // after conv5b), and leaves the window pool and the layer-norm statistics to version 3, so
  // those cases would run version 3 under its name; versions 5 and 6 run them all; version 7
  // too, its inference window pool as a stored z and the pool kernel, on the shapes it takes,
  // and its fallback to version 5 on the others; version 8 as version 7, falling back to it where
  // k makes an odd number of 128-filter tiles).
  using Kernel = cuda::ConvKernel;
  auto kernels = [](const Block& b, Precision p, bool wide) {
    std::vector<std::pair<Kernel, const char*>> k = {{Kernel::implicit_gemm, "cu3d"}};
    if (cuda::conv3d_fwd_pipelined_supports(b.conv, p)) {
      k.push_back({Kernel::pipelined, "cu3d_pipelined"});
      k.push_back({Kernel::wgmma, "cu3d_wgmma"});
      k.push_back({Kernel::wgmma_ws, "cu3d_wgmma_ws"});
      k.push_back({Kernel::wgmma_tma, "cu3d_wgmma_tma"});
      k.push_back({Kernel::wgmma_cluster, "cu3d_wgmma_cluster"});
    }
    if (wide && cuda::conv3d_fwd_wide_supports(b.conv, p)) k.push_back({Kernel::wide, "cu3d_wide"});
    if (cuda::conv3d_fwd_pipelined_ffma_supports(b.conv, p))  // fp32: version 3's FFMA form
      k.push_back({Kernel::pipelined, "cu3d_pipelined"});
    if (p == Precision::fp32 && cases::split_tf32_takes(b.conv)) {  // 3xTF32
      k.push_back({Kernel::wgmma, "cu3d_wgmma"});
      k.push_back({Kernel::wgmma_ws, "cu3d_wgmma_ws"});
      k.push_back({Kernel::wgmma_tma, "cu3d_wgmma_tma"});
      k.push_back({Kernel::wgmma_cluster, "cu3d_wgmma_cluster"});
    }
    return k;
  };
  auto needs_wgmma = [](Kernel k) {
    return k == Kernel::wgmma || k == Kernel::wgmma_ws || k == Kernel::wgmma_tma ||
           k == Kernel::wgmma_cluster;
  };
  std::vector<ParityCase> out;
  for (Precision p : cases::kPrecisions) {
    for (const Block& b : pool_blocks)
      for (auto [kernel, backend] : kernels(b, p, true))
        for (bool training : {false, true}) {
          if (kernel == Kernel::wide && !training && cuda::conv3d_pool_windows_tile_output(b.pool))
            continue;
          out.push_back({fmt::format("{}/{}/{}/{}", b.name,
                                     training ? "fwd_bias_relu_pool_train" : "fwd_bias_relu_pool",
                                     cu3d::to_string(p), backend),
                         tolerance(p),
                         [=](std::mt19937_64& rng, cudaStream_t stream) {
                           return run_conv_relu_pool(b, training, p, kernel, rng, stream);
                         },
                         needs_wgmma(kernel) ? cuda::wgmma_available : nullptr});
        }
    for (const Block& b : ln_blocks)
      for (auto [kernel, backend] : kernels(b, p, false))
        out.push_back(
            {fmt::format("{}/fwd_bias_ln_{}_relu_pool/{}/{}", b.name,
                         b.per_sample ? "per_sample" : "per_position", cu3d::to_string(p), backend),
             tolerance(p),
             [=](std::mt19937_64& rng, cudaStream_t stream) {
               return run_conv_ln_block(b, p, kernel, rng, stream);
             },
             needs_wgmma(kernel) ? cuda::wgmma_available : nullptr});
  }
  return out;
}

}  // namespace cu3d::parity
