// The CUDA conv3d API (kernels/cuda/conv3d.cuh) run whole on the CPU: conv3d.cu, conv3d_fwd.cu,
// conv3d_bwd_data.cu, conv3d_bwd_filter.cu and cast.cu with their host code (the choice of
// version, tile, split-K plan, the bf16 and tf32 operand copies, the filter transpose of
// backward-data), every kernel on the block emulator: versions 2 (FFMA and mma.sync), 3 and 4
// (cp.async, ldmatrix, mma.sync), 5 and 6 (wgmma), backward-filter's version 3 (ldmatrix.trans),
// and every fused block. Against a double-precision reference on operands rounded to the
// precision first, so that every version multiplies exactly what the reference does.
//
// One schedule (in order) per run: conv3d_wgmma_test.cpp varies the schedules of versions 5 and
// 6, the only ones with a hand-over between warps that a schedule could break; here the point is
// the host code and the versions that test does not reach.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "block.h"
#include "conv_reference.h"
#include "kernels/cpu/pool3d.h"
#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "test_buffers.h"

namespace cu3d {
namespace {

using cuda::ConvKernel;
using emu_test::conv_reference;
using emu_test::relative_error;  // a poisoned (never written) value counts as a miss of 1e30
using emu_test::round_to;

std::vector<float> random_values(int64_t n, Precision p, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v)
    f = round_to(uniform(rng), p);
  return v;
}

std::vector<float> poisoned(int64_t n) {
  return std::vector<float>(n, emu_test::poison());
}

// Appends to `out` the outputs of every forward block of conv s on `kernel`, each array poisoned
// before its call: the forward (with bias), bias + ReLU, the training pool `pool` (pooled, z),
// and the layer-norm statistics per sample (y, mean, rstd). The tests that compare one version
// with another bit for bit run it on each.
void append_block_outputs(std::vector<std::vector<float>>& out, const Conv3dShape& s,
                          const Pool3dShape& pool, const std::vector<float>& x,
                          const std::vector<float>& w, const std::vector<float>& bias, Precision p,
                          ConvKernel kernel) {
  auto fresh = [&](int64_t n) -> float* { return out.emplace_back(poisoned(n)).data(); };
  cuda::conv3d_fwd(s, x.data(), w.data(), bias.data(), fresh(s.output_size()), p, nullptr, kernel);
  cuda::conv3d_fwd_bias_relu(s, x.data(), w.data(), bias.data(), fresh(s.output_size()), p, nullptr,
                             kernel);
  float* pooled = fresh(pool.output_size());
  cuda::conv3d_fwd_bias_relu_maxpool(s, pool, x.data(), w.data(), bias.data(), pooled,
                                     fresh(s.output_size()), p, nullptr, kernel);
  float* y = fresh(s.output_size());
  float* mean = fresh(s.n);
  cuda::conv3d_fwd_bias_ln_stats(s, x.data(), w.data(), bias.data(), s.output_size() / s.k / s.n,
                                 1e-5f, y, mean, fresh(s.n), p, nullptr, kernel);
}

struct Case {
  const char* name;
  Precision precision;
  ConvKernel kernel;
};

// A C3D-like layer in miniature: 64 channels (a whole stage row in bf16 and tf32, so versions
// 3-7 take it), 3 x 3 spatial taps with padding, k = 128, at stride 1 (versions 3-7 also run its
// backward-data; version 7 the pool whose windows tile the output as a stored z and the pool
// kernel); pools 1 x 2 x 2 tile its output.
Conv3dShape layer() {
  return Conv3dShape::make(1, {2, 6, 6}, 64, 128, {1, 3, 3}, {1, 1, 1}, Padding::same);
}

class ConvApiEmulation : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { emu::reset_report(); }
  // The run took the version asked for: its instructions ran, and no other version's did.
  void TearDown() override {
    const emu::Report& r = emu::report();
    EXPECT_EQ(r.total_faults(), 0) << r.summary();
    const auto [name, p, kernel] = GetParam();
    const bool tensor_cores = p != Precision::fp32;
    const bool wgmma = kernel == ConvKernel::wgmma || kernel == ConvKernel::wgmma_ws ||
                       kernel == ConvKernel::wgmma_tma;
    const bool pipelined = kernel != ConvKernel::implicit_gemm && tensor_cores;
    // fp32 on versions 5-7 too (3xTF32, its backward-filter on version 3), on 3 and 4 as
    // version 3's FFMA form (its backward-filter on version 2's FFMA).
    const bool ffma3 =
        !tensor_cores && (kernel == ConvKernel::pipelined || kernel == ConvKernel::wide);
    const bool split_filter = !tensor_cores && wgmma;
    EXPECT_EQ(r.wgmma > 0, wgmma) << "wgmma instructions: " << r.wgmma;
    // cp.async: versions 3-6 (fp32 on 3-6), and backward-filter's version 3 (bf16, tf32);
    // version 7 loads by the TMA.
    const bool forward_copies = (pipelined || wgmma || ffma3) && kernel != ConvKernel::wgmma_tma;
    const bool copies = forward_copies || pipelined || split_filter;
    EXPECT_EQ(r.copies > 0, copies) << "cp.async copies: " << r.copies;
    EXPECT_EQ(r.bulk_copies > 0, kernel == ConvKernel::wgmma_tma)
        << "TMA loads (version 7): " << r.bulk_copies;
    EXPECT_EQ(r.mma_sync > 0, tensor_cores || split_filter)
        << "mma.sync (version 2, backward-filter): " << r.mma_sync;
    // ldmatrix: versions 3 and 4, and backward-filter's version 3 (bf16) under any of them.
    const bool ldmatrix = (kernel == ConvKernel::pipelined || kernel == ConvKernel::wide) ||
                          (pipelined && p == Precision::bf16);
    EXPECT_EQ(r.ldmatrix > 0, ldmatrix && tensor_cores) << "ldmatrix: " << r.ldmatrix;
    // ld.shared: backward-filter's version 3 in tf32 (fp32's 3xTF32 too), its fragments;
    // version 3's FFMA form.
    EXPECT_EQ(r.shared_loads > 0, (pipelined && p == Precision::tf32) || ffma3 || split_filter)
        << "ld.shared: " << r.shared_loads;
    if (kernel == ConvKernel::wgmma_ws) {
      EXPECT_GT(r.mbarrier_polls, 0) << "version 6's hand-overs";
    }
  }
  static double tolerance() { return 1e-5; }
};

TEST_P(ConvApiEmulation, ForwardFusedBlocksAndBackward) {
  const auto [name, p, kernel] = GetParam();
  const Conv3dShape s = layer();
  const std::vector<float> x = random_values(s.input_size(), p, 1),
                           w = random_values(s.filter_size(), p, 2),
                           bias = random_values(s.k, Precision::fp32, 3),
                           dy = random_values(s.output_size(), p, 4);
  const emu_test::ConvReference ref = conv_reference(s, x, w, bias, dy);

  std::vector<float> y = poisoned(s.output_size());
  cuda::conv3d_fwd(s, x.data(), w.data(), bias.data(), y.data(), p, nullptr, kernel);
  EXPECT_LT(relative_error(y, ref.y), tolerance()) << "conv3d_fwd";

  std::vector<double> relu_ref(ref.y);
  for (double& v : relu_ref)
    v = std::max(v, 0.0);
  y = poisoned(s.output_size());
  cuda::conv3d_fwd_bias_relu(s, x.data(), w.data(), bias.data(), y.data(), p, nullptr, kernel);
  EXPECT_LT(relative_error(y, relu_ref), tolerance()) << "conv3d_fwd_bias_relu";

  // Both inference pools (windows that tile the output, reduced in the epilogue; overlapping
  // ones, stored to a scratch z and pooled) and the training form, which also writes z.
  for (const Pool3dShape& pool :
       {Pool3dShape::make(s.n, s.out, s.k, {1, 2, 2}, {1, 2, 2}, Padding::valid),
        Pool3dShape::make(s.n, s.out, s.k, {2, 3, 3}, {1, 2, 2}, Padding::same)}) {
    std::vector<double> pooled_ref(pool.output_size());
    cpu::maxpool3d_fwd_naive<double>(pool, relu_ref.data(), pooled_ref.data());
    std::vector<float> pooled = poisoned(pool.output_size()), z = poisoned(s.output_size());
    cuda::conv3d_fwd_bias_relu_maxpool(s, pool, x.data(), w.data(), bias.data(), pooled.data(),
                                       nullptr, p, nullptr, kernel);
    EXPECT_LT(relative_error(pooled, pooled_ref), tolerance()) << "pool, inference";
    pooled = poisoned(pool.output_size());
    cuda::conv3d_fwd_bias_relu_maxpool(s, pool, x.data(), w.data(), bias.data(), pooled.data(),
                                       z.data(), p, nullptr, kernel);
    EXPECT_LT(relative_error(pooled, pooled_ref), tolerance()) << "pool, training";
    EXPECT_LT(relative_error(z, relu_ref), tolerance()) << "z";
  }

  // The layer-norm block's statistics per sample.
  const int64_t positions = s.output_size() / s.k;
  std::vector<float> mean = poisoned(1), rstd = poisoned(1);
  y = poisoned(s.output_size());
  cuda::conv3d_fwd_bias_ln_stats(s, x.data(), w.data(), bias.data(), positions, 1e-5f, y.data(),
                                 mean.data(), rstd.data(), p, nullptr, kernel);
  double sum = 0, squares = 0;
  for (double v : ref.y)
    sum += v;
  const double mu = sum / double(ref.y.size());
  for (double v : ref.y)
    squares += (v - mu) * (v - mu);
  EXPECT_LT(relative_error(y, ref.y), tolerance()) << "ln_stats y";
  EXPECT_NEAR(mean[0], mu, 1e-5 * std::sqrt(squares / double(ref.y.size())));
  EXPECT_NEAR(rstd[0], 1.0 / std::sqrt(squares / double(ref.y.size()) + 1e-5), 1e-4 * rstd[0]);

  std::vector<float> dx = poisoned(s.input_size());
  cuda::conv3d_bwd_data(s, dy.data(), w.data(), dx.data(), p, nullptr, kernel);
  EXPECT_LT(relative_error(dx, ref.dx), tolerance()) << "conv3d_bwd_data";

  std::vector<float> dw = poisoned(s.filter_size()), dbias = poisoned(s.k);
  cuda::conv3d_bwd_filter(s, x.data(), dy.data(), dw.data(), dbias.data(), p, nullptr, kernel);
  EXPECT_LT(relative_error(dw, ref.dw), tolerance()) << "conv3d_bwd_filter";
  EXPECT_LT(relative_error(dbias, ref.dbias), tolerance()) << "dbias";
}

const Case kCases[] = {
    {"Fp32_Version2", Precision::fp32, ConvKernel::implicit_gemm},
    {"Fp32_Version3", Precision::fp32, ConvKernel::pipelined},
    {"Fp32_Version4", Precision::fp32, ConvKernel::wide},
    {"Fp32_Version5", Precision::fp32, ConvKernel::wgmma},
    {"Fp32_Version6", Precision::fp32, ConvKernel::wgmma_ws},
    {"Fp32_Version7", Precision::fp32, ConvKernel::wgmma_tma},
    {"Tf32_Version2", Precision::tf32, ConvKernel::implicit_gemm},
    {"Bf16_Version2", Precision::bf16, ConvKernel::implicit_gemm},
    {"Tf32_Version3", Precision::tf32, ConvKernel::pipelined},
    {"Bf16_Version3", Precision::bf16, ConvKernel::pipelined},
    {"Tf32_Version4", Precision::tf32, ConvKernel::wide},
    {"Bf16_Version4", Precision::bf16, ConvKernel::wide},
    {"Tf32_Version5", Precision::tf32, ConvKernel::wgmma},
    {"Bf16_Version5", Precision::bf16, ConvKernel::wgmma},
    {"Bf16_Version6", Precision::bf16, ConvKernel::wgmma_ws},
    {"Tf32_Version7", Precision::tf32, ConvKernel::wgmma_tma},
    {"Bf16_Version7", Precision::bf16, ConvKernel::wgmma_tma},
};

INSTANTIATE_TEST_SUITE_P(Kernels, ConvApiEmulation, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Backward-filter's version 3 in both precisions (tf32's fragments by ld.shared, session 19) on
// shapes the layer above does not reach: two 64-channel column tiles per tap and 136 filters (a
// second M tile of 8), a stride, 126 positions (bf16: 2 stages, the last of 62; tf32: 4, the last
// of 30); and an uneven kernel with strides 2 and 3, padding in h only, 8 filters, 81 positions.
// Against the double reference, with the version's own instructions counted.
TEST(ConvApiEmulationBwdFilter, Version3OnOddShapes) {
  const Conv3dShape shapes[] = {
      Conv3dShape::make(2, {3, 6, 7}, 128, 136, {1, 3, 3}, {1, 2, 1}, Padding::explicit_,
                        {0, 1, 1}),
      Conv3dShape::make(1, {5, 9, 9}, 64, 8, {1, 3, 2}, {2, 1, 3}, Padding::explicit_, {0, 1, 0}),
  };
  for (Precision p : {Precision::bf16, Precision::tf32})
    for (const Conv3dShape& s : shapes) {
      SCOPED_TRACE(std::string(to_string(p)) + ", k " + std::to_string(s.k));
      ASSERT_TRUE(cuda::conv3d_bwd_filter_pipelined_supports(s, p));
      const std::vector<float> x = random_values(s.input_size(), p, 31),
                               w = random_values(s.filter_size(), p, 32),
                               bias = random_values(s.k, Precision::fp32, 33),
                               dy = random_values(s.output_size(), p, 34);
      const emu_test::ConvReference ref = conv_reference(s, x, w, bias, dy);
      std::vector<float> dw = poisoned(s.filter_size());
      emu::reset_report();
      cuda::conv3d_bwd_filter(s, x.data(), dy.data(), dw.data(), nullptr, p, nullptr,
                              ConvKernel::pipelined);
      EXPECT_LT(relative_error(dw, ref.dw), 1e-5);
      const emu::Report& r = emu::report();
      EXPECT_EQ(r.total_faults(), 0) << r.summary();
      EXPECT_GT(r.copies, 0) << "version 3's cp.async ring";
      EXPECT_EQ(r.ldmatrix > 0, p == Precision::bf16) << "ldmatrix.trans: " << r.ldmatrix;
      EXPECT_EQ(r.shared_loads > 0, p == Precision::tf32) << "ld.shared: " << r.shared_loads;
    }
}

// Version 3's fp32 form (FFMA on 128 x 128 tiles) against version 2 on shapes the layer above
// does not reach: 96 channels (3 stages per tap), 136 filters (a second N tile with 8 columns, the
// layer-norm statistics' third group alone in it), a stride and 126 positions (one partial M
// tile); and 32 channels, 64 filters (the second warp column idle), 240 positions (a partial second
// M tile) pooled in windows of 8. Both add the same products in the same order from zero, so
// every stored value is the same bits; the statistics, added in another order, agree to fp32
// rounding. The FFMA form's own instructions are counted: ld.shared, cp.async, no mma.
TEST(ConvApiEmulationFfma, Version3MatchesVersion2BitForBit) {
  struct OddShape {
    Conv3dShape conv;
    Pool3dShape pool;
  };
  const Conv3dShape strided =
      Conv3dShape::make(2, {3, 6, 7}, 96, 136, {1, 3, 3}, {1, 2, 1}, Padding::explicit_, {0, 1, 1});
  const Conv3dShape narrow =
      Conv3dShape::make(1, {4, 6, 10}, 32, 64, {2, 3, 3}, {1, 1, 1}, Padding::same);
  const OddShape shapes[] = {
      {strided, Pool3dShape::make(2, strided.out, 136, {1, 3, 3}, {1, 2, 2}, Padding::same)},
      {narrow, Pool3dShape::make(1, narrow.out, 64, {2, 2, 2}, {2, 2, 2}, Padding::valid)},
  };
  const Precision p = Precision::fp32;
  for (const OddShape& shape : shapes) {
    const Conv3dShape& s = shape.conv;  // plain references: the lambdas below capture them
    const Pool3dShape& pool = shape.pool;
    SCOPED_TRACE("k " + std::to_string(s.k));
    ASSERT_TRUE(cuda::conv3d_fwd_pipelined_ffma_supports(s, p));
    const std::vector<float> x = random_values(s.input_size(), p, 41),
                             w = random_values(s.filter_size(), p, 42),
                             bias = random_values(s.k, p, 43);
    // Each block's outputs on `kernel`: the inference pool, then the others, the statistics last.
    auto outputs = [&](ConvKernel kernel) {
      std::vector<std::vector<float>> out;
      float* pooled = out.emplace_back(poisoned(pool.output_size())).data();
      cuda::conv3d_fwd_bias_relu_maxpool(s, pool, x.data(), w.data(), bias.data(), pooled, nullptr,
                                         p, nullptr, kernel);
      append_block_outputs(out, s, pool, x, w, bias, p, kernel);
      return out;
    };
    const auto v2 = outputs(ConvKernel::implicit_gemm);
    emu::reset_report();
    const auto v3 = outputs(ConvKernel::pipelined);
    const emu::Report& r = emu::report();
    EXPECT_EQ(r.total_faults(), 0) << r.summary();
    EXPECT_GT(r.shared_loads, 0) << "the FFMA form's 16-byte loads";
    EXPECT_GT(r.copies, 0) << "version 3's cp.async ring";
    EXPECT_EQ(r.mma_sync + r.wgmma + r.ldmatrix, 0);
    ASSERT_EQ(v2.size(), v3.size());
    for (size_t i = 0; i + 2 < v2.size(); ++i)
      EXPECT_EQ(std::memcmp(v2[i].data(), v3[i].data(), sizeof(float) * v2[i].size()), 0)
          << "output " << i;
    for (size_t i = v2.size() - 2; i < v2.size(); ++i)  // mean and rstd per sample
      for (int n = 0; n < s.n; ++n)
        EXPECT_NEAR(v3[i][n], v2[i][n], 1e-5 * std::abs(v2[i][n]) + 1e-6) << "output " << i;
  }
}

// conv3d_fwd_prepared (the benchmark's kernel-to-kernel rows) on the operands conv3d_fwd converts
// x and w to before it launches the same kernel: the same bits, from versions 5 and 7.
TEST(ConvApiEmulationPrepared, MatchesTheForwardBitForBit) {
  const Conv3dShape s = layer();
  const Case cases[] = {{"Bf16_Version5", Precision::bf16, ConvKernel::wgmma},
                        {"Tf32_Version7", Precision::tf32, ConvKernel::wgmma_tma},
                        {"Bf16_Version7", Precision::bf16, ConvKernel::wgmma_tma}};
  for (const auto& [name, p, kernel] : cases) {
    SCOPED_TRACE(name);
    const std::vector<float> x = random_values(s.input_size(), Precision::fp32, 5),
                             w = random_values(s.filter_size(), Precision::fp32, 6);
    std::vector<float> expected = poisoned(s.output_size()), y = poisoned(s.output_size());
    cuda::conv3d_fwd(s, x.data(), w.data(), nullptr, expected.data(), p, nullptr, kernel);
    emu::reset_report();
    if (p == Precision::bf16) {
      std::vector<__nv_bfloat16> xb(x.size()), wb(w.size());
      cuda::fp32_to_bf16(x.data(), xb.data(), int64_t(x.size()), nullptr);
      cuda::fp32_to_bf16(w.data(), wb.data(), int64_t(w.size()), nullptr);
      cuda::conv3d_fwd_prepared(s, xb.data(), wb.data(), y.data(), p, nullptr, kernel);
    } else {
      std::vector<float> xt(x.size()), wt(w.size());
      cuda::fp32_to_tf32(x.data(), xt.data(), int64_t(x.size()), nullptr);
      cuda::fp32_to_tf32(w.data(), wt.data(), int64_t(w.size()), nullptr);
      cuda::conv3d_fwd_prepared(s, xt.data(), wt.data(), y.data(), p, nullptr, kernel);
    }
    const emu::Report& r = emu::report();
    EXPECT_EQ(r.total_faults(), 0) << r.summary();
    EXPECT_GT(r.wgmma, 0);
    EXPECT_EQ(r.bulk_copies > 0, kernel == ConvKernel::wgmma_tma) << "TMA loads: " << r.bulk_copies;
    EXPECT_EQ(std::memcmp(y.data(), expected.data(), sizeof(float) * y.size()), 0);
  }
}

// Version 8 (clusters of two blocks sharing an operand tile) through the API: the forward of a
// layer with k = 256 (two 128-filter tiles per M tile: the clusters share A) and k = 128 (they
// share B), every block, and backward-data into c = 256 and 128 channels (its mirrored forward's
// k), in each precision (fp32 as 3xTF32): bit for bit version 7's outputs, whose checks against
// the reference are the cases above. The emulated grid's clusters are counted, or version 8
// falling back to 7 would compare version 7 with itself.
TEST(ConvApiEmulationCluster, Version8MatchesVersion7BitForBit) {
  for (const auto& [precision, filters] :
       {std::pair{Precision::bf16, 256}, std::pair{Precision::tf32, 256},
        std::pair{Precision::fp32, 256}, std::pair{Precision::bf16, 128}}) {
    const Precision p = precision;  // plain variables: a lambda below captures them
    const int k = filters;
    SCOPED_TRACE(std::string(to_string(p)) + ", k " + std::to_string(k));
    const Conv3dShape s =
        Conv3dShape::make(1, {2, 6, 6}, 64, k, {1, 3, 3}, {1, 1, 1}, Padding::same);
    const Conv3dShape wide_input =
        Conv3dShape::make(1, {2, 6, 6}, k, 64, {1, 3, 3}, {1, 1, 1}, Padding::same);
    const Pool3dShape pool =
        Pool3dShape::make(s.n, s.out, s.k, {1, 2, 2}, {1, 2, 2}, Padding::valid);
    ASSERT_TRUE(cuda::conv3d_fwd_wgmma_cluster_supports(s, p));
    ASSERT_TRUE(cuda::conv3d_fwd_wgmma_cluster_supports(bwd_data_as_forward(wide_input), p));
    const std::vector<float> x = random_values(s.input_size(), p, 21),
                             w = random_values(s.filter_size(), p, 22),
                             bias = random_values(s.k, Precision::fp32, 23),
                             dy = random_values(wide_input.output_size(), p, 24),
                             w2 = random_values(wide_input.filter_size(), p, 25);
    // Each block's outputs on `kernel`, then bwd-data's.
    auto outputs = [&](ConvKernel kernel) {
      std::vector<std::vector<float>> out;
      append_block_outputs(out, s, pool, x, w, bias, p, kernel);
      float* dx = out.emplace_back(poisoned(wide_input.input_size())).data();
      cuda::conv3d_bwd_data(wide_input, dy.data(), w2.data(), dx, p, nullptr, kernel);
      return out;
    };
    emu::reset_report();
    const auto v7 = outputs(ConvKernel::wgmma_tma);
    EXPECT_EQ(emu::report().clusters, 0);
    emu::reset_report();
    const auto v8 = outputs(ConvKernel::wgmma_cluster);
    const emu::Report& r = emu::report();
    EXPECT_EQ(r.total_faults(), 0) << r.summary();
    EXPECT_GT(r.clusters, 0) << "version 8 ran no cluster";
    ASSERT_EQ(v7.size(), v8.size());
    for (size_t i = 0; i < v7.size(); ++i)
      EXPECT_EQ(std::memcmp(v7[i].data(), v8[i].data(), sizeof(float) * v7[i].size()), 0)
          << "output " << i;
  }
}

// fp32 on versions 5 and 7 (3xTF32) on operands of full fp32 precision: their error against the
// double reference is of the order of version 2's FFMA, where the same kernels in tf32 (which
// round the operands to 10 mantissa bits) miss by ~1e-3. Forward, bwd-data and bwd-filter (on
// version 3, its operands as three batches).
TEST(ConvApiEmulationSplitTf32, Fp32ErrorIsOfFfmasOrder) {
  const Conv3dShape s = layer();
  const std::vector<float> x = random_values(s.input_size(), Precision::fp32, 11),
                           w = random_values(s.filter_size(), Precision::fp32, 12),
                           dy = random_values(s.output_size(), Precision::fp32, 13);
  const emu_test::ConvReference ref = conv_reference(s, x, w, std::vector<float>(s.k, 0.f), dy);
  struct Errors {
    double y, dx, dw;
  };
  auto errors = [&](Precision p, ConvKernel kernel) {
    std::vector<float> y = poisoned(s.output_size()), dx = poisoned(s.input_size()),
                       dw = poisoned(s.filter_size());
    cuda::conv3d_fwd(s, x.data(), w.data(), nullptr, y.data(), p, nullptr, kernel);
    cuda::conv3d_bwd_data(s, dy.data(), w.data(), dx.data(), p, nullptr, kernel);
    // tf32's bwd-filter on version 3, as fp32's 3xTF32 runs.
    cuda::conv3d_bwd_filter(s, x.data(), dy.data(), dw.data(), nullptr, p, nullptr,
                            p == Precision::tf32 ? ConvKernel::pipelined : kernel);
    return Errors{relative_error(y, ref.y), relative_error(dx, ref.dx), relative_error(dw, ref.dw)};
  };
  emu::reset_report();
  const Errors ffma = errors(Precision::fp32, ConvKernel::implicit_gemm);
  EXPECT_EQ(emu::report().wgmma, 0) << "version 2";
  const Errors v5 = errors(Precision::fp32, ConvKernel::wgmma);
  const Errors v7 = errors(Precision::fp32, ConvKernel::wgmma_tma);
  const Errors tf32 = errors(Precision::tf32, ConvKernel::wgmma);
  EXPECT_EQ(emu::report().total_faults(), 0) << emu::report().summary();
  for (const auto& [name, e] : {std::pair{"version 5", v5}, std::pair{"version 7", v7}}) {
    SCOPED_TRACE(name);
    EXPECT_LT(e.y, 4 * ffma.y + 1e-7) << "FFMA " << ffma.y;
    EXPECT_LT(e.dx, 4 * ffma.dx + 1e-7) << "FFMA " << ffma.dx;
    EXPECT_LT(e.dw, 4 * ffma.dw + 1e-7) << "FFMA " << ffma.dw;
    EXPECT_GT(tf32.y, 100 * e.y) << "tf32 " << tf32.y;
    EXPECT_GT(tf32.dx, 100 * e.dx) << "tf32 " << tf32.dx;
    EXPECT_GT(tf32.dw, 100 * e.dw) << "tf32 " << tf32.dw;
  }
  std::printf(
      "relative error y / dx / dw: FFMA %.2e / %.2e / %.2e, 3xTF32 version 5 %.2e / %.2e / %.2e, "
      "version 7 %.2e / %.2e / %.2e, tf32 %.2e / %.2e / %.2e\n",
      ffma.y, ffma.dx, ffma.dw, v5.y, v5.dx, v5.dw, v7.y, v7.dx, v7.dw, tf32.y, tf32.dx, tf32.dw);
}

// Version 7 takes version 5's shapes at stride 1 whose im2col corners (-pad_before and
// pad_after - (kernel - 1)) a 5-D tensor map holds, within [-16, 15]; fp32 where tf32 takes the
// tripled shape (c a multiple of 32).
TEST(ConvApiEmulationOddShape, Version7TakesStrideOneShapesWithinTheMapsCorners) {
  const Conv3dShape ok = layer();
  EXPECT_TRUE(cuda::conv3d_fwd_wgmma_tma_supports(ok, Precision::bf16));
  EXPECT_TRUE(cuda::conv3d_fwd_wgmma_tma_supports(ok, Precision::tf32));
  EXPECT_TRUE(cuda::conv3d_fwd_wgmma_tma_supports(ok, Precision::fp32));
  EXPECT_TRUE(cuda::conv3d_fwd_pipelined_ffma_supports(ok, Precision::fp32));
  EXPECT_FALSE(cuda::conv3d_fwd_pipelined_ffma_supports(ok, Precision::tf32)) << "fp32 only";
  const Conv3dShape c48 =
      Conv3dShape::make(1, {2, 6, 6}, 48, 64, {1, 3, 3}, {1, 1, 1}, Padding::same);
  EXPECT_FALSE(cuda::conv3d_fwd_pipelined_ffma_supports(c48, Precision::fp32))
      << "48 channels: not whole rows of 32";
  EXPECT_FALSE(cuda::conv3d_fwd_wgmma_supports(c48, Precision::fp32)) << "144 channels split";
  EXPECT_TRUE(cuda::conv3d_bwd_data_runs_as_forward(c48, Precision::fp32, ConvKernel::wgmma))
      << "the mirrored forward's 64 channels, 192 split";
  EXPECT_TRUE(cuda::conv3d_bwd_data_runs_as_forward(c48, Precision::fp32, ConvKernel::wide))
      << "version 3's FFMA form on the mirrored forward's 64 channels";
  EXPECT_FALSE(
      cuda::conv3d_bwd_data_runs_as_forward(c48, Precision::fp32, ConvKernel::implicit_gemm));
  const Conv3dShape strided =
      Conv3dShape::make(1, {2, 6, 6}, 64, 128, {1, 3, 3}, {1, 2, 1}, Padding::same);
  EXPECT_TRUE(cuda::conv3d_fwd_wgmma_supports(strided, Precision::bf16));
  EXPECT_FALSE(cuda::conv3d_fwd_wgmma_tma_supports(strided, Precision::bf16));
  // Padding 16 before: a lower corner of -16 fits; 17 does not. A 1 x 1 x 20 kernel without
  // padding: an upper corner of -19 does not.
  auto padded = [](int pad) {
    return Conv3dShape::make(1, {2, 4, 4}, 64, 64, {1, 1, 3}, {1, 1, 1}, Padding::explicit_,
                             {0, 0, pad});
  };
  EXPECT_TRUE(cuda::conv3d_fwd_wgmma_tma_supports(padded(16), Precision::bf16));
  EXPECT_FALSE(cuda::conv3d_fwd_wgmma_tma_supports(padded(17), Precision::bf16));
  const Conv3dShape long_kernel =
      Conv3dShape::make(1, {2, 4, 24}, 64, 64, {1, 1, 20}, {1, 1, 1}, Padding::valid);
  EXPECT_FALSE(cuda::conv3d_fwd_wgmma_tma_supports(long_kernel, Precision::bf16));
}

// conv1a's shape in miniature: 3 input channels, a 3 x 3 x 3 kernel, stride 2 in space: only
// version 2 takes it (scalar gathers), whatever the caller asks.
TEST(ConvApiEmulationOddShape, ThreeChannelsStridedFallBackToVersion2) {
  const Conv3dShape s = Conv3dShape::make(1, {3, 7, 9}, 3, 40, {3, 3, 3}, {1, 2, 2}, Padding::same);
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    SCOPED_TRACE(to_string(p));
    emu::reset_report();
    const std::vector<float> x = random_values(s.input_size(), p, 5),
                             w = random_values(s.filter_size(), p, 6),
                             bias = random_values(s.k, Precision::fp32, 7),
                             dy = random_values(s.output_size(), p, 8);
    const emu_test::ConvReference ref = conv_reference(s, x, w, bias, dy);
    std::vector<float> y = poisoned(s.output_size()), dx = poisoned(s.input_size()),
                       dw = poisoned(s.filter_size());
    cuda::conv3d_fwd(s, x.data(), w.data(), bias.data(), y.data(), p, nullptr, ConvKernel::wgmma);
    cuda::conv3d_bwd_data(s, dy.data(), w.data(), dx.data(), p, nullptr, ConvKernel::wgmma);
    cuda::conv3d_bwd_filter(s, x.data(), dy.data(), dw.data(), nullptr, p, nullptr,
                            ConvKernel::pipelined);
    EXPECT_LT(relative_error(y, ref.y), 1e-5);
    EXPECT_LT(relative_error(dx, ref.dx), 1e-5);
    EXPECT_LT(relative_error(dw, ref.dw), 1e-5);
    EXPECT_EQ(emu::report().total_faults(), 0) << emu::report().summary();
  }
}

}  // namespace
}  // namespace cu3d
