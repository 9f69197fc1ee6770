// Versions 3 (pipelined), 4 (wide) and 5 (wgmma) against version 2 on the same operands, versions
// 6 (wgmma_ws) and 7 (wgmma_tma) against version 5, and the shapes they take. All round the
// operands the same way (tf32 round-to-nearest, bf16 round-to-nearest-even). Versions 2-4 issue the
// same mma instructions over r in the same order, so their forwards should agree bit for bit;
// version 5's wgmma sums inside each instruction in the hardware's order, so it agrees to fp32
// rounding. The parity suite (cu3d_pipelined, cu3d_wide, cu3d_wgmma cases) checks each against the
// CPU reference as well.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/cases.h"
#include "gpu/parity.h"
#include "gpu/require_gpu.h"
#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cudnn/conv3d.h"

namespace cu3d::parity {
namespace {

// ||b - a|| / ||a||, and how many of b are not finite (left unwritten: outputs are poisoned).
struct Difference {
  double relative;
  int64_t not_finite;
};
Difference difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  int64_t not_finite = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(b[i])) ++not_finite;
    diff += (double(b[i]) - a[i]) * (double(b[i]) - a[i]);
    norm += double(a[i]) * a[i];
  }
  return {std::sqrt(diff / norm), not_finite};
}

// Expects b to be a bit for bit (`what` names the pair for the message).
void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b,
                      const std::string& what) {
  int64_t differ = 0, not_finite = 0;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      ++differ;
      if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
        ++not_finite;
      else
        worst = std::max(worst, double(std::abs(a[i] - b[i])));
    }
  EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << a.size() << " outputs differ ("
                       << not_finite << " not finite: unwritten), the finite ones by up to "
                       << worst;
}

// Versions 3 and 4 of the forward against version 2 on the same operands, bit for bit; in fp32
// both run version 3's FFMA form, which adds version 2's products in version 2's order from zero.
TEST(ConvPipelined, MatchesVersion2BitForBit) {
  CU3D_REQUIRE_GPU();
  const std::vector<cases::ConvLayer> layers = cases::all_conv_layers();
  const cuda::Stream stream;
  std::mt19937_64 rng(5);
  int compared = 0;
  for (const auto& layer : layers) {
    const Conv3dShape& s = layer.shape;
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16}) {
      const bool ffma = p == Precision::fp32;
      if (!(ffma ? cuda::conv3d_fwd_pipelined_ffma_supports(s, p)
                 : cuda::conv3d_fwd_pipelined_supports(s, p)))
        continue;
      const DeviceArray x(random_floats(s.input_size(), rng)),
          w(random_floats(s.filter_size(), rng));
      const DeviceArray bias(random_floats(s.k, rng));
      // Versions 3 and 4 fall back to version 2 for misaligned operands: these must take them.
      ASSERT_EQ(reinterpret_cast<uintptr_t>(x.get()) % 16, 0u);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(w.get()) % 16, 0u);
      DeviceArray v2(s.output_size());
      v2.poison();
      cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), v2.get(), p, stream.get());
      CU3D_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
      const std::vector<float> a = v2.download();
      for (const auto kernel : {cuda::ConvKernel::pipelined, cuda::ConvKernel::wide}) {
        const char* version = ffma                               ? "version 3 (FFMA)"
                              : kernel == cuda::ConvKernel::wide ? "version 4"
                                                                 : "version 3";
        DeviceArray out(s.output_size());
        out.poison();
        cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), out.get(), p, stream.get(), kernel);
        CU3D_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
        expect_same_bits(a, out.download(), layer.name + " " + to_string(p) + " " + version);
        ++compared;
      }
    }
  }
  // conv2a-conv5b in each precision, conv1a in none; the three odd shapes with 64 and 128
  // channels in each; each on versions 3 and 4.
  EXPECT_EQ(compared, 2 * (3 * 7 + 3 * 3));
}

// The forward (with bias) of every layer in `precisions` (tf32 and bf16 unless given) where
// versions 5 and 6 apply, on fresh operands, by `first` and by `second`, each into poisoned
// outputs; compare(what, a, b) gets both. Returns how many layers and precisions ran: as
// MatchesVersion2BitForBit's on one version, conv2a-conv5b and the three odd shapes with 64 and
// 128 channels in both precisions.
int compare_on_wgmma_layers(uint64_t seed, cuda::ConvKernel first, cuda::ConvKernel second,
                            const std::function<void(const std::string&, const std::vector<float>&,
                                                     const std::vector<float>&)>& compare,
                            const std::vector<Precision>& precisions = {Precision::tf32,
                                                                        Precision::bf16}) {
  const cuda::Stream stream;
  std::mt19937_64 rng(seed);
  int compared = 0;
  for (const auto& layer : cases::all_conv_layers()) {
    const Conv3dShape& s = layer.shape;
    for (Precision p : precisions) {
      if (!cuda::conv3d_fwd_wgmma_supports(s, p)) continue;
      const DeviceArray x(random_floats(s.input_size(), rng)),
          w(random_floats(s.filter_size(), rng));
      const DeviceArray bias(random_floats(s.k, rng));
      std::vector<float> out[2];
      for (int k = 0; k < 2; ++k) {
        DeviceArray y(s.output_size());
        y.poison();
        cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), p, stream.get(),
                         k == 0 ? first : second);
        CU3D_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
        out[k] = y.download();
      }
      compare(layer.name + " " + to_string(p), out[0], out[1]);
      ++compared;
    }
  }
  return compared;
}

// Version 5 (wgmma) against version 2 on the same operands: both multiply the same rounded
// operands, but a wgmma sums its k-step inside the tensor core in the hardware's order, so the
// outputs agree to fp32 rounding (well under 1e-4 of the norm, even if the tensor cores truncate),
// where a k-step read from the wrong bytes, a wrong row or a lost stage of r (64 values in bf16,
// 32 in tf32) moves them by sqrt(stage / R): 19 % / 14 % on conv2a, 6 % / 4 % on conv5b.
TEST(ConvPipelined, WgmmaMatchesVersion2) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const int compared = compare_on_wgmma_layers(
      11, cuda::ConvKernel::implicit_gemm, cuda::ConvKernel::wgmma,
      [](const std::string& what, const std::vector<float>& v2, const std::vector<float>& v5) {
        const Difference d = difference(v2, v5);
        EXPECT_EQ(d.not_finite, 0) << what << ": outputs left unwritten";
        EXPECT_LT(d.relative, 1e-4) << what;
      });
  EXPECT_EQ(compared, 2 * 7 + 2 * 3);
}

// Version 6 (version 5 warp-specialized) against version 5 on the same operands: the same wgmma
// instructions on the same stages in the same order, so the same bits (the pooled and layer-norm
// epilogues: the cu3d_wgmma_ws parity cases and EngineCuda.WgmmaWsConvMatchesVersion5). A stage
// handed over too early (a slot refilled before its wgmma finished, a full barrier that completes
// before the copies land) shows as differing outputs; a lost hand-over as a trap after seconds.
TEST(ConvPipelined, WgmmaWsMatchesWgmmaBitForBit) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const int compared = compare_on_wgmma_layers(
      13, cuda::ConvKernel::wgmma, cuda::ConvKernel::wgmma_ws,
      [](const std::string& what, const std::vector<float>& v5, const std::vector<float>& v6) {
        expect_same_bits(v5, v6, what + " version 6");
      });
  EXPECT_EQ(compared, 2 * 7 + 2 * 3);
}

// Version 7 (version 6 with its stages gathered by the TMA) against version 5 on the same
// operands: it issues version 5's wgmma instructions on the same shared-memory stages in the same
// order, so the same bits; on the shapes it does not take (here the odd ones with strides)
// it runs version 5 itself. An output that differs was computed from a stage other than the one
// version 5 gathers: a TMA box that landed the wrong pixels or taps (the im2col corners and
// offsets, the filters' tile coordinates), a stage handed to the math before all its bytes
// arrived (the slot's expected transaction count), or a slot refilled before the wgmma reading
// it finished; a lost arrival shows as a trap after seconds. The layers version 7 takes are
// counted: a support test that said no everywhere would compare version 5 with itself.
TEST(ConvPipelined, WgmmaTmaMatchesWgmmaBitForBit) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const int compared = compare_on_wgmma_layers(
      17, cuda::ConvKernel::wgmma, cuda::ConvKernel::wgmma_tma,
      [](const std::string& what, const std::vector<float>& v5, const std::vector<float>& v7) {
        expect_same_bits(v5, v7, what + " version 7");
      });
  EXPECT_EQ(compared, 2 * 7 + 2 * 3);
  int taken = 0;
  for (const auto& layer : cases::all_conv_layers())
    for (Precision p : {Precision::tf32, Precision::bf16})
      taken += cuda::conv3d_fwd_wgmma_tma_supports(layer.shape, p);
  // conv2a-conv5b and odd_c64_k72_same_even_kernel in both precisions; not the other odd shapes
  // with 64 and 128 channels (strides).
  EXPECT_EQ(taken, 2 * 8);
}

// Version 8 (version 7 in clusters of two blocks, each loading half of a shared tile into both by
// a TMA multicast: A on conv3a-conv5b, B on conv2a and the odd shapes' single N tiles) against
// version 5: the same wgmma on the same stages in the same order, so the same bits. A half landed
// in the wrong block or rows, a stage released before the peer's consumers were done with it (a
// multicast over a slot still read), or a cluster pairing the wrong tiles shows as differing
// outputs; a lost remote arrival as a trap after seconds. The layers version 8 takes are
// counted, as for version 7.
TEST(ConvPipelined, WgmmaClusterMatchesWgmmaBitForBit) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const int compared = compare_on_wgmma_layers(
      23, cuda::ConvKernel::wgmma, cuda::ConvKernel::wgmma_cluster,
      [](const std::string& what, const std::vector<float>& v5, const std::vector<float>& v8) {
        expect_same_bits(v5, v8, what + " version 8");
      });
  EXPECT_EQ(compared, 2 * 7 + 2 * 3);
  int taken = 0;
  for (const auto& layer : cases::all_conv_layers())
    for (Precision p : {Precision::tf32, Precision::bf16})
      taken += cuda::conv3d_fwd_wgmma_cluster_supports(layer.shape, p);
  // Version 7's: conv2a-conv5b and odd_c64_k72_same_even_kernel in both precisions.
  EXPECT_EQ(taken, 2 * 8);
}

// fp32 on versions 5 and 7, as three tf32 products (3xTF32), against version 2's FFMA on the same
// fp32 operands: both within a few 1e-7 of the exact result (the emulation measured 2.6e-7 and
// 4e-7, tests/emulation/conv3d_api_test.cpp), so within 1e-5 of each other, where plain tf32
// differs by ~3e-4 and a lost product block (the tails, a third of the channels) by 1e-3 or
// more. Versions 5 and 7 issue the same wgmma on the same split operands: the same bits.
TEST(ConvPipelined, SplitTf32MatchesFfma) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  std::vector<std::vector<float>> version5;
  int compared = compare_on_wgmma_layers(
      19, cuda::ConvKernel::implicit_gemm, cuda::ConvKernel::wgmma,
      [&](const std::string& what, const std::vector<float>& v2, const std::vector<float>& v5) {
        const Difference d = difference(v2, v5);
        EXPECT_EQ(d.not_finite, 0) << what << ": outputs left unwritten";
        EXPECT_LT(d.relative, 1e-5) << what;
        version5.push_back(v5);
      },
      {Precision::fp32});
  // conv2a-conv5b and the odd shapes with 64 and 128 channels.
  EXPECT_EQ(compared, 7 + 3);
  size_t i = 0;
  compared = compare_on_wgmma_layers(
      19, cuda::ConvKernel::implicit_gemm, cuda::ConvKernel::wgmma_tma,
      [&](const std::string& what, const std::vector<float>&, const std::vector<float>& v7) {
        ASSERT_LT(i, version5.size());
        expect_same_bits(version5[i++], v7, what + " version 7");
      },
      {Precision::fp32});
  EXPECT_EQ(compared, 7 + 3);
}

// conv3d_fwd_prepared, the benchmark's kernel-to-kernel rows, on the operands each side's
// conv3d_fwd converts x and w to: cu3d's versions 5 and 7 bit for bit with conv3d_fwd; cuDNN
// within the rounding of its bf16 output (cudnn::conv3d_fwd converts the same bf16 output back;
// an algorithm that splits the reduction may add in another order from run to run).
TEST(ConvPipelined, PreparedForwardMatchesTheForward) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const Conv3dShape s =
      Conv3dShape::make(2, {4, 8, 8}, 64, 128, {3, 3, 3}, {1, 1, 1}, Padding::same);
  std::mt19937_64 rng(29);
  const DeviceArray x(random_floats(s.input_size(), rng)), w(random_floats(s.filter_size(), rng));
  auto synced = [](const DeviceArray& a) {
    CU3D_CUDA_CHECK(cudaDeviceSynchronize());
    return a.download();
  };
  for (Precision p : {Precision::tf32, Precision::bf16}) {
    SCOPED_TRACE(to_string(p));
    const bool bf16 = p == Precision::bf16;
    // The converted operands (4 bytes per element: room for either form).
    const DeviceArray xp(s.input_size()), wp(s.filter_size());
    if (bf16) {
      cuda::fp32_to_bf16(x.get(), reinterpret_cast<__nv_bfloat16*>(xp.get()), s.input_size(),
                         nullptr);
      cuda::fp32_to_bf16(w.get(), reinterpret_cast<__nv_bfloat16*>(wp.get()), s.filter_size(),
                         nullptr);
    } else {
      cuda::fp32_to_tf32(x.get(), xp.get(), s.input_size(), nullptr);
      cuda::fp32_to_tf32(w.get(), wp.get(), s.filter_size(), nullptr);
    }
    for (cuda::ConvKernel kernel : {cuda::ConvKernel::wgmma, cuda::ConvKernel::wgmma_tma}) {
      DeviceArray expected(s.output_size()), got(s.output_size());
      expected.poison();
      got.poison();
      cuda::conv3d_fwd(s, x.get(), w.get(), nullptr, expected.get(), p, nullptr, kernel);
      cuda::conv3d_fwd_prepared(s, xp.get(), wp.get(), got.get(), p, nullptr, kernel);
      expect_same_bits(synced(expected), synced(got),
                       kernel == cuda::ConvKernel::wgmma ? "version 5" : "version 7");
    }
    DeviceArray expected(s.output_size()), y(s.output_size()), got(s.output_size());
    expected.poison();
    got.poison();
    cudnn::conv3d_fwd(s, x.get(), w.get(), nullptr, expected.get(), p, nullptr);
    if (bf16) {
      cudnn::conv3d_fwd_prepared(s, xp.get(), wp.get(), y.get(), p, nullptr);
      cuda::bf16_to_fp32(reinterpret_cast<const __nv_bfloat16*>(y.get()), got.get(),
                         s.output_size(), nullptr);
    } else {
      cudnn::conv3d_fwd_prepared(s, x.get(), w.get(), got.get(), p, nullptr);
    }
    const Difference d = difference(synced(expected), synced(got));
    EXPECT_EQ(d.not_finite, 0) << "cuDNN";
    EXPECT_LT(d.relative, 1e-3) << "cuDNN";
  }
}

// Version 3's backward-filter against version 2 on the same operands, both rounded to bf16 (or
// tf32) and accumulated in fp32, but over r in other blocks and splits: the sums then differ only
// by fp32 rounding (about 1e-5 of the norm for 5000-term splits, even if the tensor cores
// truncate), where a lost or doubled stage of 64 (32) positions would move dw by sqrt(64 / R):
// 2.5 % on conv2a at batch 2, 25 % on the odd shape. tf32's version 3 (session 19) loads its
// fragments from shared memory one value at a time; version 2 rounds x and dy as it stages them,
// version 3 in a pass before (the same rounding, cvt.rna). fp32 asked for on a wgmma version runs
// version 3 as three tf32 products (3xTF32, operands as three batches): within 1e-5 of version
// 2's FFMA (the emulation measured 1.3e-7 of the exact sums for both), where tf32 alone is 3e-4.
TEST(ConvPipelined, BwdFilterMatchesVersion2) {
  CU3D_REQUIRE_GPU();
  const std::vector<cases::ConvLayer> layers = cases::all_conv_layers();
  const cuda::Stream stream;
  std::mt19937_64 rng(7);
  for (Precision p : {Precision::bf16, Precision::tf32, Precision::fp32}) {
    SCOPED_TRACE(to_string(p));
    const bool split = p == Precision::fp32;
    const cuda::ConvKernel kernel = split ? cuda::ConvKernel::wgmma : cuda::ConvKernel::pipelined;
    int compared = 0;
    for (const auto& layer : layers) {
      const Conv3dShape& s = layer.shape;
      if (split ? !cuda::conv3d_bwd_filter_runs_split_tf32(s, p, kernel)
                : !cuda::conv3d_bwd_filter_pipelined_supports(s, p))
        continue;
      const DeviceArray x(random_floats(s.input_size(), rng)),
          dy(random_floats(s.output_size(), rng));
      DeviceArray v2(s.filter_size()), v3(s.filter_size()), db2(s.k), db3(s.k);
      for (DeviceArray* a : {&v2, &v3, &db2, &db3})
        a->poison();
      cuda::conv3d_bwd_filter(s, x.get(), dy.get(), v2.get(), db2.get(), p, stream.get());
      cuda::conv3d_bwd_filter(s, x.get(), dy.get(), v3.get(), db3.get(), p, stream.get(), kernel);
      CU3D_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
      const Difference d = difference(v2.download(), v3.download());
      EXPECT_EQ(d.not_finite, 0) << layer.name << ": outputs left unwritten";
      EXPECT_LT(d.relative, split ? 1e-5 : 1e-4) << layer.name;
      EXPECT_EQ(db2.download(), db3.download()) << layer.name << ": the bias gradient is shared";
      ++compared;
    }
    // conv2a-conv5b, the odd shape with 128 channels and the one with 64 channels and k = 72
    // (the other with 64 has k = 70: not a multiple of 8).
    EXPECT_EQ(compared, 7 + 2);
  }
}

TEST(ConvPipelined, TakesOnlyTheShapesItIsBuiltFor) {
  const auto layers = cases::c3d_conv_layers(32);
  EXPECT_FALSE(cuda::conv3d_fwd_pipelined_supports(layers[0].shape, Precision::bf16));  // c = 3
  for (size_t i = 1; i < layers.size(); ++i) {
    EXPECT_TRUE(cuda::conv3d_fwd_pipelined_supports(layers[i].shape, Precision::bf16));
    EXPECT_TRUE(cuda::conv3d_fwd_pipelined_supports(layers[i].shape, Precision::tf32));
    EXPECT_FALSE(cuda::conv3d_fwd_pipelined_supports(layers[i].shape, Precision::fp32));
    EXPECT_TRUE(cuda::conv3d_fwd_pipelined_ffma_supports(layers[i].shape, Precision::fp32));
    EXPECT_FALSE(cuda::conv3d_fwd_pipelined_ffma_supports(layers[i].shape, Precision::tf32));
  }
  EXPECT_FALSE(cuda::conv3d_fwd_pipelined_ffma_supports(layers[0].shape, Precision::fp32));
  // Backward-data is a forward conv from k = 64..512 channels: every layer, conv1a included.
  for (const auto& layer : layers) {
    EXPECT_TRUE(cuda::conv3d_bwd_data_pipelined_supports(layer.shape, Precision::bf16));
    EXPECT_TRUE(cuda::conv3d_bwd_data_pipelined_supports(layer.shape, Precision::tf32));
  }
  // Version 4 takes the forward's version 3 shapes, and so does version 5 where it can run.
  std::string why;
  const bool wgmma = cuda::wgmma_available(&why);
  for (const auto& layer : layers)
    for (Precision p : cases::kPrecisions) {
      EXPECT_EQ(cuda::conv3d_fwd_wide_supports(layer.shape, p),
                cuda::conv3d_fwd_pipelined_supports(layer.shape, p));
      // fp32: where tf32 takes the tripled shape (3xTF32), conv2a-conv5b.
      const bool takes = p == Precision::fp32 ? cases::split_tf32_takes(layer.shape)
                                              : cuda::conv3d_fwd_pipelined_supports(layer.shape, p);
      EXPECT_EQ(cuda::conv3d_fwd_wgmma_supports(layer.shape, p), wgmma && takes) << why;
      // Version 7 takes version 5's shapes at stride 1: all of C3D's (padding 1).
      EXPECT_EQ(cuda::conv3d_fwd_wgmma_tma_supports(layer.shape, p),
                cuda::conv3d_fwd_wgmma_supports(layer.shape, p));
    }
  EXPECT_FALSE(cuda::conv3d_fwd_wgmma_tma_supports(
      Conv3dShape::make(2, {8, 16, 16}, 64, 64, {3, 3, 3}, {2, 2, 2}, Padding::explicit_,
                        {1, 1, 1}),
      Precision::bf16));
  // Backward-filter: bf16 and tf32 on conv2a-conv5b (c a multiple of 64), not fp32, not conv1a
  // (c = 3) nor a k that splits a 16-byte chunk of dy.
  EXPECT_FALSE(cuda::conv3d_bwd_filter_pipelined_supports(layers[0].shape, Precision::bf16));
  for (size_t i = 1; i < layers.size(); ++i) {
    EXPECT_TRUE(cuda::conv3d_bwd_filter_pipelined_supports(layers[i].shape, Precision::bf16));
    EXPECT_TRUE(cuda::conv3d_bwd_filter_pipelined_supports(layers[i].shape, Precision::tf32));
    EXPECT_FALSE(cuda::conv3d_bwd_filter_pipelined_supports(layers[i].shape, Precision::fp32));
  }
  EXPECT_FALSE(cuda::conv3d_bwd_filter_pipelined_supports(
      Conv3dShape::make(2, {8, 16, 16}, 64, 70, {3, 3, 3}, {1, 1, 1}, Padding::explicit_,
                        {1, 1, 1}),
      Precision::bf16));
  // Not with a stride (the mirrored problem is no forward conv), nor 48 filters (dy's channels).
  EXPECT_FALSE(cuda::conv3d_bwd_data_pipelined_supports(
      Conv3dShape::make(2, {8, 16, 16}, 64, 64, {3, 3, 3}, {2, 2, 2}, Padding::explicit_,
                        {1, 1, 1}),
      Precision::tf32));
  EXPECT_FALSE(cuda::conv3d_bwd_data_pipelined_supports(
      Conv3dShape::make(2, {8, 16, 16}, 64, 48, {3, 3, 3}, {1, 1, 1}, Padding::explicit_,
                        {1, 1, 1}),
      Precision::tf32));
}

}  // namespace
}  // namespace cu3d::parity
