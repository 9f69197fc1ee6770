// The memory-bound CUDA ops (max-pool forward and backward, layer norm forward and backward,
// the layer-norm block's normalize + ReLU + pool, the input transform, softmax + cross-entropy)
// run on the CPU through the block emulator: the real .cu files, host code included, with each
// <<<launch>>> rewritten into an emulated launch (launch_to_call.cpp). Each op against its CPU
// reference (kernels/cpu), in three schedules of blocks and threads, which must agree bit for bit
// (the ops are deterministic), with no shuffle divergence or barrier misuse, on outputs poisoned
// before the call, and with guard values around the outputs that must stay untouched.
//
// What this cannot show is speed, or the effect of the memory system (coalescing, L2): the GPU
// suite and the benchmarks do. It does show the indexing, the unrolled windows, the vector
// paths and their scalar tails, the block reductions and the kernel choices of the host code,
// on every CI run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "block.h"
#include "kernels/cpu/input_transform.h"
#include "kernels/cpu/layer_norm.h"
#include "kernels/cpu/pool3d.h"
#include "kernels/cpu/softmax_xent.h"
#include "kernels/cuda/input_transform.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cuda/softmax_xent.cuh"
#include "test_buffers.h"

namespace cu3d {
namespace {

using namespace emu_test;  // Buffer, in_every_schedule and the comparisons

std::mt19937 rng(2026);
float uniform(float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}

// ---- max-pool ---------------------------------------------------------------------------------

struct PoolCase {
  const char* name;
  int n;
  Dims3 in;
  int c;
  Dims3 window, stride;
  Padding padding;
  Dims3 pad;
  bool ceil;
  bool ties_and_nans;
  int offset;
};

const PoolCase kPoolCases[] = {
    {"C3D_1x2x2", 2, {4, 6, 6}, 64, {1, 2, 2}, {1, 2, 2}, Padding::valid, {}, false, false, 0},
    {"C3D_1x2x2_ties_nan",
     2,
     {4, 6, 6},
     64,
     {1, 2, 2},
     {1, 2, 2},
     Padding::valid,
     {},
     false,
     true,
     0},
    {"C3D_2x2x2", 2, {4, 6, 6}, 128, {2, 2, 2}, {2, 2, 2}, Padding::valid, {}, false, true, 0},
    {"C3D_pool5_pad011",
     2,
     {2, 7, 7},
     32,
     {2, 2, 2},
     {2, 2, 2},
     Padding::explicit_,
     {0, 1, 1},
     false,
     true,
     0},
    {"C12_valid_tail", 1, {5, 7, 9}, 12, {2, 2, 2}, {2, 2, 2}, Padding::valid, {}, false, true, 0},
    {"C5_stride232_gaps",
     2,
     {5, 7, 9},
     5,
     {2, 2, 2},
     {2, 3, 2},
     Padding::valid,
     {},
     false,
     true,
     0},
    {"W3_stride2_pad1_overlap",
     2,
     {5, 7, 9},
     8,
     {3, 3, 3},
     {2, 2, 2},
     Padding::explicit_,
     {1, 1, 1},
     false,
     true,
     0},
    {"Ceil_2x2x2", 2, {5, 7, 9}, 8, {2, 2, 2}, {2, 2, 2}, Padding::valid, {}, true, true, 0},
    {"Same_2x2x2_c16", 1, {3, 5, 7}, 16, {2, 2, 2}, {2, 2, 2}, Padding::same, {}, false, true, 0},
    {"C64_misaligned", 1, {4, 6, 6}, 64, {2, 2, 2}, {2, 2, 2}, Padding::valid, {}, false, true, 1},
};

class MaxPoolEmulation : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxPoolEmulation, ForwardAndBackwardMatchTheCpuBitForBit) {
  const PoolCase& pc = GetParam();
  const Pool3dShape s =
      Pool3dShape::make(pc.n, pc.in, pc.c, pc.window, pc.stride, pc.padding, pc.pad, pc.ceil);
  std::vector<float> x(s.input_size()), dy(s.output_size());
  for (float& v : x)
    v = pc.ties_and_nans ? float(int(uniform(0, 3))) : uniform(-2, 2);
  if (pc.ties_and_nans) {
    for (float& v : x)
      if (uniform(0, 1) < 0.03f) v = NAN;
    x.front() = x.back() = NAN;
  }
  for (float& v : dy)
    v = uniform(0.5f, 1.5f);  // nonzero: a gradient sent astray shows
  std::vector<float> y_ref(s.output_size()), dx_ref(s.input_size()), dx_relu_ref(s.input_size());
  cpu::maxpool3d_fwd_naive<float>(s, x.data(), y_ref.data());
  cpu::maxpool3d_bwd_naive<float>(s, x.data(), y_ref.data(), dy.data(), dx_ref.data());
  cpu::maxpool3d_relu_bwd<float>(s, x.data(), y_ref.data(), dy.data(), dx_relu_ref.data());

  Buffer y(s.output_size(), pc.offset), dx(s.input_size(), pc.offset),
      dx_relu(s.input_size(), pc.offset);
  const auto out = in_every_schedule([&] {
    for (Buffer* b : {&y, &dx, &dx_relu})
      b->poison_all();
    cuda::maxpool3d_fwd(s, x.data(), y.data(), nullptr);
    cuda::maxpool3d_bwd(s, x.data(), y.data(), dy.data(), dx.data(), nullptr);
    cuda::maxpool3d_relu_bwd(s, x.data(), y.data(), dy.data(), dx_relu.data(), nullptr);
    for (Buffer* b : {&y, &dx, &dx_relu})
      EXPECT_TRUE(b->guards_intact()) << "wrote outside an output";
    return std::vector<std::vector<float>>{y.values(), dx.values(), dx_relu.values()};
  });
  EXPECT_EQ(bit_mismatches(out[0], y_ref), 0) << "y";
  EXPECT_EQ(bit_mismatches(out[1], dx_ref), 0) << "dx";
  EXPECT_EQ(bit_mismatches(out[2], dx_relu_ref), 0) << "dx through the pool and a ReLU";
}

INSTANTIATE_TEST_SUITE_P(Shapes, MaxPoolEmulation, ::testing::ValuesIn(kPoolCases),
                         [](const auto& info) { return std::string(info.param.name); });

// The pool + ReLU backward where it matters most: ReLU outputs, mostly zeros, so many windows'
// max is 0 and their gradient must stop there; on disjoint windows (one thread per window) and
// overlapping ones (the gather), against the CPU's ReLU backward of its pool backward.
TEST(MaxPoolReluEmulation, WindowsOfZerosPassNoGradient) {
  for (const Dims3 stride : {Dims3{2, 2, 2}, Dims3{1, 1, 1}}) {
    SCOPED_TRACE(stride.d == 2 ? "disjoint windows" : "overlapping windows");
    const Pool3dShape s =
        Pool3dShape::make(2, {4, 6, 6}, 8, {2, 2, 2}, stride, Padding::valid, {}, false);
    std::vector<float> x(s.input_size()), dy(s.output_size()), y(s.output_size());
    for (float& v : x)
      v = uniform(0, 1) < 0.8f ? 0.f : uniform(0.5f, 1.5f);
    for (float& v : dy)
      v = uniform(0.5f, 1.5f);
    cpu::maxpool3d_fwd<float>(s, x.data(), y.data());
    ASSERT_GT(std::count(y.begin(), y.end(), 0.f), 10) << "too few windows of zeros to test";
    std::vector<float> want(s.input_size());
    // The naive backward adds an input's gradients in the gather's order (window order).
    cpu::maxpool3d_bwd_naive<float>(s, x.data(), y.data(), dy.data(), want.data());
    for (size_t i = 0; i < want.size(); ++i)
      want[i] = x[i] > 0.f ? want[i] : 0.f;  // the ReLU's backward
    Buffer dx(s.input_size());
    const auto out = in_every_schedule([&] {
      dx.poison_all();
      cuda::maxpool3d_relu_bwd(s, x.data(), y.data(), dy.data(), dx.data(), nullptr);
      return std::vector<std::vector<float>>{dx.values()};
    });
    EXPECT_EQ(bit_mismatches(out[0], want), 0);
  }
}

// On a device of one SM the launches get at most 8 blocks (grid_stride_blocks), so each thread
// goes round its grid-stride loop several times.
TEST(MaxPoolEmulationOneSm, GridStrideLoopsCoverEveryOutput) {
  const Pool3dShape s =
      Pool3dShape::make(2, {8, 12, 12}, 128, {2, 2, 2}, {2, 2, 2}, Padding::valid, {}, false);
  std::vector<float> x(s.input_size()), dy(s.output_size());
  for (float& v : x)
    v = uniform(-2, 2);
  for (float& v : dy)
    v = uniform(0.5f, 1.5f);
  std::vector<float> y_ref(s.output_size()), dx_ref(s.input_size());
  cpu::maxpool3d_fwd_naive<float>(s, x.data(), y_ref.data());
  cpu::maxpool3d_bwd_naive<float>(s, x.data(), y_ref.data(), dy.data(), dx_ref.data());
  emu::set_multiprocessors(1);
  Buffer y(s.output_size()), dx(s.input_size());
  const auto out = in_every_schedule([&] {
    y.poison_all();
    dx.poison_all();
    cuda::maxpool3d_fwd(s, x.data(), y.data(), nullptr);
    cuda::maxpool3d_bwd(s, x.data(), y.data(), dy.data(), dx.data(), nullptr);
    return std::vector<std::vector<float>>{y.values(), dx.values()};
  });
  emu::set_multiprocessors(132);
  ASSERT_GT(s.output_size() / 4, 8 * 256) << "the shape no longer needs the loops";
  EXPECT_EQ(bit_mismatches(out[0], y_ref), 0) << "y";
  EXPECT_EQ(bit_mismatches(out[1], dx_ref), 0) << "dx";
}

// ---- layer norm ---------------------------------------------------------------------------------

// Rows of `groups` x `m` positions x c channels, each group with its own mean and spread.
std::vector<float> grouped_values(int64_t groups, int64_t per_group) {
  std::vector<float> x(groups * per_group);
  for (int64_t g = 0; g < groups; ++g) {
    const float mean = uniform(-2, 2), spread = uniform(0.5f, 2.5f);
    for (int64_t i = 0; i < per_group; ++i)
      x[g * per_group + i] = mean + spread * uniform(-1, 1);
  }
  return x;
}

// The emulated device a case runs on: an H100's SMs and shared memory unless it says otherwise
// (less shared memory splits a sample over more blocks of a resident team).
struct EmulatedDevice {
  int multiprocessors = 132, shared_per_block = 227 * 1024, shared_per_sm = 228 * 1024;
};

struct LayerNormCase {
  const char* name;
  cpu::LayerNormShape s;
  cuda::SampleNormPath path = cuda::SampleNormPath::automatic;
  bool resident = false;  // whether the resident kernels must run (forward and backward)
  EmulatedDevice device = {};
};

constexpr auto kPipelined = cuda::SampleNormPath::pipelined;
constexpr auto kResident = cuda::SampleNormPath::resident;

const LayerNormCase kLayerNormCases[] = {
    // Per sample, c dividing 1024, pipelined: the one-launch kernels (chunks of 8192 elements).
    {"PerSample_c64", {2, 4 * 6 * 6, 64}, kPipelined},    // a group per clip; a partial last chunk
    {"Large_groups", {2, 3000, 32}, kPipelined},          // 12 chunks per sample
    {"Sample_c512", {3, 21, 512}, kPipelined},            // two threads per channel quad
    {"Sample_c1024", {2, 9, 1024}, kPipelined},           // a thread per channel quad
    {"Sample_under_a_chunk", {2, 5, 64}, kPipelined},     // 80 float4s: most threads idle
    {"Many_one_chunk_samples", {67, 40, 4}, kPipelined},  // a chain of 67 hand-overs
    // Per sample, resident: a team of blocks per sample (4 at most resident in the emulation).
    {"Resident_c64", {2, 4 * 6 * 6, 64}, kResident, true},  // a team of 3, one sample a round
    {"Resident_c512_partial_slice", {3, 21, 512}, kResident, true},  // 2688 float4s in 3 slices
    {"Resident_c1024", {3, 9, 1024}, kResident, true},               // a thread per channel quad
    {"Resident_c4_one_block_teams", {7, 300, 4}, kResident, true},   // 4 teams of 1, 2 rounds
    // 25600 float4s a sample: spread over 25 blocks where the device holds them; here forward 2
    // teams of 2 blocks of 12800 (50 a thread), backward one of 4 of 6400 (25 a thread, copied
    // in four groups of 7, 7, 7 and 4).
    {"Resident_many_float4s_a_thread", {2, 1600, 64}, kResident, true},
    // Shared memory for 512 (forward) or 256 (backward) float4s a block, two blocks an SM:
    // forward 2 teams of 2 (samples 0, 2, 4 and 1, 3), backward 1 team of 3 for 5 rounds.
    {"Resident_small_shared_memory", {5, 48, 64}, kResident, true, {2, 8 * 1024 + 1024, 20 * 1024}},
    // Samples larger than the shared memory of the blocks the device holds at once: one team of
    // 4 blocks holding 512 float4s (forward) or 256 of each array (backward) of their slices,
    // the rest read twice: c 64, slices of 8192 (32 float4s a thread, 2 or 1 held: the streamed
    // batches' last partial); c 1024, a team of 3 slices of 768 (3 a thread, 2 or 1 held).
    {"Resident_partly_held", {2, 2048, 64}, kResident, true, {2, 8 * 1024 + 1024, 20 * 1024}},
    {"Resident_partly_held_c1024", {3, 9, 1024}, kResident, true, {2, 8 * 1024 + 1024, 20 * 1024}},
    // Automatic: the resident kernels; pipelined where not even a 256-float4 slice fits.
    {"Automatic_resident", {2, 4 * 6 * 6, 64}, cuda::SampleNormPath::automatic, true},
    {"Automatic_no_shared_memory",
     {2, 2048, 64},
     cuda::SampleNormPath::automatic,
     false,
     {2, 4 * 1024, 20 * 1024}},
    // The other paths.
    {"PerPosition_c64", {2 * 4 * 6 * 6, 1, 64}},  // a group per position (row kernels)
    {"PerPosition_c512", {50, 1, 512}},           // teams of 32 lanes, 4 float4s a lane
    {"C12_vector_tail", {3, 700, 12}},  // two kernels, float4 normalize; 16 chunks of rows
    {"C5_scalar", {4, 9, 5}},
    {"C2_bwd_partials", {3, 700, 2}},  // the backward's group and channel sums in one pass
};

class LayerNormEmulation : public ::testing::TestWithParam<LayerNormCase> {};

TEST_P(LayerNormEmulation, ForwardAndBackwardMatchTheCpu) {
  const LayerNormCase& lc = GetParam();
  const cpu::LayerNormShape s = lc.s;
  const int64_t n = s.groups * s.m * s.c;
  const std::vector<float> x = grouped_values(s.groups, s.m * s.c);
  std::vector<float> gamma(s.c), beta(s.c), dy(n);
  for (float& v : gamma)
    v = uniform(0.5f, 1.5f);
  for (float& v : beta)
    v = uniform(-0.5f, 0.5f);
  for (float& v : dy)
    v = uniform(-1, 1);
  std::vector<double> xd(x.begin(), x.end()), gd(gamma.begin(), gamma.end()),
      bd(beta.begin(), beta.end()), dyd(dy.begin(), dy.end());
  std::vector<double> y_ref(n), mean_ref(s.groups), rstd_ref(s.groups), dx_ref(n), dg_ref(s.c),
      db_ref(s.c);
  cpu::layer_norm_fwd_naive<double>(s, xd.data(), gd.data(), bd.data(), 1e-5, y_ref.data(),
                                    mean_ref.data(), rstd_ref.data());
  cpu::layer_norm_bwd_naive<double>(s, xd.data(), gd.data(), mean_ref.data(), rstd_ref.data(),
                                    dyd.data(), dx_ref.data(), dg_ref.data(), db_ref.data());

  emu::set_multiprocessors(lc.device.multiprocessors);
  emu::set_shared_memory(lc.device.shared_per_block, lc.device.shared_per_sm);
  Buffer y(n), mean(s.groups), rstd(s.groups), dx(n), dgamma(s.c), dbeta(s.c);
  const auto out = in_every_schedule([&] {
    for (Buffer* b : {&y, &mean, &rstd, &dx, &dgamma, &dbeta})
      b->poison_all();
    cuda::layer_norm_fwd(s, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(), mean.data(),
                         rstd.data(), nullptr, lc.path);
    // The resident kernels copy their slices in by cp.async; no other layer-norm kernel does.
    EXPECT_EQ(emu::report().copies > 0, lc.resident) << "forward: the resident kernel ran";
    const long copies = emu::report().copies;
    cuda::layer_norm_bwd(s, x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(),
                         dgamma.data(), dbeta.data(), nullptr, lc.path);
    EXPECT_EQ(emu::report().copies > copies, lc.resident) << "backward: the resident kernel ran";
    for (Buffer* b : {&y, &mean, &rstd, &dx, &dgamma, &dbeta})
      EXPECT_TRUE(b->guards_intact()) << "wrote outside an output";
    return std::vector<std::vector<float>>{y.values(),  mean.values(),   rstd.values(),
                                           dx.values(), dgamma.values(), dbeta.values()};
  });
  emu::set_multiprocessors(132);
  emu::set_shared_memory(227 * 1024, 228 * 1024);
  EXPECT_LT(relative_error(out[0], y_ref), 1e-5) << "y";
  EXPECT_LT(relative_error(out[1], mean_ref), 1e-5) << "mean";
  EXPECT_LT(relative_error(out[2], rstd_ref), 1e-5) << "rstd";
  EXPECT_LT(relative_error(out[3], dx_ref), 1e-4) << "dx";
  EXPECT_LT(relative_error(out[4], dg_ref), 1e-4) << "dgamma";
  EXPECT_LT(relative_error(out[5], db_ref), 1e-4) << "dbeta";
}

// Asking for the resident kernels where they cannot run is an error that says what to take.
TEST(LayerNormResidentEmulation, RefusesShapesAndSamplesItCannotHold) {
  Buffer x(2 * 2048 * 64), y(2 * 2048 * 64), gamma(64), beta(64), mean(2), rstd(2);
  const auto forward = [&](cpu::LayerNormShape s) {
    cuda::layer_norm_fwd(s, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(), mean.data(),
                         rstd.data(), nullptr, kResident);
  };
  try {
    forward({2 * 2048, 1, 64});  // per position
    FAIL() << "per-position groups taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SampleNormPath::automatic"), std::string::npos)
        << e.what();
  }
  emu::set_shared_memory(4 * 1024, 20 * 1024);
  emu::set_multiprocessors(2);
  try {
    forward({2, 2048, 64});  // 4 KB a block: under 256 float4s with the static shared memory
    FAIL() << "blocks without room for a 256-float4 slice taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no room for a slice"), std::string::npos) << e.what();
  }
  emu::set_multiprocessors(132);
  emu::set_shared_memory(227 * 1024, 228 * 1024);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormEmulation, ::testing::ValuesIn(kLayerNormCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- the layer-norm block: normalize + scale/offset + ReLU + max-pool ---------------------------

struct LayerNormPoolCase {
  const char* name;
  int n;
  Dims3 in;
  int c;
  Dims3 window;
  Padding padding;
  Dims3 pad;
  bool per_sample;
  int offset;
};

const LayerNormPoolCase kLayerNormPoolCases[] = {
    {"C3D_2x2x2_per_sample", 2, {4, 6, 6}, 64, {2, 2, 2}, Padding::valid, {}, true, 0},
    {"C3D_1x2x2_per_position", 2, {3, 6, 6}, 32, {1, 2, 2}, Padding::valid, {}, false, 0},
    {"C3D_pool5_pad011", 2, {2, 7, 7}, 32, {2, 2, 2}, Padding::explicit_, {0, 1, 1}, true, 0},
    {"C12_tail", 1, {5, 7, 9}, 12, {2, 2, 2}, Padding::valid, {}, true, 0},
    {"C5_scalar", 2, {4, 6, 6}, 5, {2, 2, 2}, Padding::valid, {}, false, 0},
    {"C16_misaligned", 1, {4, 6, 6}, 16, {2, 2, 2}, Padding::valid, {}, true, 1},
};

class LayerNormPoolEmulation : public ::testing::TestWithParam<LayerNormPoolCase> {};

TEST_P(LayerNormPoolEmulation, MatchesNormalizeThenPool) {
  const LayerNormPoolCase& lc = GetParam();
  const Pool3dShape p =
      Pool3dShape::make(lc.n, lc.in, lc.c, lc.window, lc.window, lc.padding, lc.pad);
  const int64_t positions = int64_t(p.n) * p.in.d * p.in.h * p.in.w;
  const int64_t m = lc.per_sample ? positions / p.n : 1;
  const cpu::LayerNormShape ls{positions / m, m, p.c};
  const std::vector<float> x = grouped_values(ls.groups, m * p.c);
  std::vector<float> gamma(p.c), beta(p.c), y_norm(x.size()), mean(ls.groups), rstd(ls.groups);
  for (float& v : gamma)
    v = uniform(0.5f, 1.5f);
  for (float& v : beta)
    v = uniform(-0.5f, 0.5f);
  cpu::layer_norm_fwd<float>(ls, x.data(), gamma.data(), beta.data(), 1e-5f, y_norm.data(),
                             mean.data(), rstd.data());
  std::vector<double> z_ref(x.size()), y_ref(p.output_size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t g = i / p.c / m, ch = i % p.c;
    z_ref[i] = std::max(0.0, (double(x[i]) - mean[g]) * double(rstd[g]) * gamma[ch] + beta[ch]);
  }
  cpu::maxpool3d_fwd_naive<double>(p, z_ref.data(), y_ref.data());

  Buffer y_only(p.output_size(), lc.offset), y(p.output_size(), lc.offset),
      z(p.input_size(), lc.offset);
  const auto out = in_every_schedule([&] {
    for (Buffer* b : {&y_only, &y, &z})
      b->poison_all();
    cuda::layer_norm_relu_maxpool_fwd(p, m, x.data(), gamma.data(), beta.data(), mean.data(),
                                      rstd.data(), y_only.data(), nullptr, nullptr);
    cuda::layer_norm_relu_maxpool_fwd(p, m, x.data(), gamma.data(), beta.data(), mean.data(),
                                      rstd.data(), y.data(), z.data(), nullptr);
    for (Buffer* b : {&y_only, &y, &z})
      EXPECT_TRUE(b->guards_intact()) << "wrote outside";
    return std::vector<std::vector<float>>{y_only.values(), y.values(), z.values()};
  });
  EXPECT_LT(relative_error(out[0], y_ref), 1e-5) << "pooled, inference (no z)";
  EXPECT_LT(relative_error(out[2], z_ref), 1e-5) << "z";
  std::vector<float> pooled_z(p.output_size());
  cpu::maxpool3d_fwd_naive<float>(p, out[2].data(), pooled_z.data());
  EXPECT_EQ(bit_mismatches(out[1], pooled_z), 0) << "pooled, training: the pool of its own z";
  EXPECT_EQ(bit_mismatches(out[0], out[1]), 0) << "inference and training pool differ";
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormPoolEmulation, ::testing::ValuesIn(kLayerNormPoolCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- input transform ----------------------------------------------------------------------------

struct InputTransformCase {
  const char* name;
  cpu::InputTransformShape s;
  int offset;
  bool with_mean;
};

const InputTransformCase kInputTransformCases[] = {
    {"C3D_rgb", {2, 2, 128, 171, 3, 112, 112}, 0, true},
    {"C3D_rgb_misaligned", {2, 2, 128, 171, 3, 112, 112}, 1, true},
    {"Odd_gray", {3, 5, 17, 13, 1, 9, 11}, 0, true},
    {"Odd_gray_no_mean", {3, 5, 17, 13, 1, 9, 11}, 0, false},
    {"Odd_rgba_tail", {2, 3, 20, 24, 4, 7, 12}, 0, true},
    {"Odd_rgba_tail_misaligned", {2, 3, 20, 24, 4, 7, 12}, 1, false},
    {"One_row", {1, 1, 3, 5, 4, 1, 5}, 0, true},
};

class InputTransformEmulation : public ::testing::TestWithParam<InputTransformCase> {};

TEST_P(InputTransformEmulation, MatchesTheCpu) {
  const InputTransformCase& ic = GetParam();
  const cpu::InputTransformShape& s = ic.s;
  std::vector<uint8_t> x(s.input_size()), flips(s.n);
  std::vector<int32_t> crops(2 * s.n);
  std::vector<float> mean(s.c);
  for (uint8_t& v : x)
    v = uint8_t(uniform(0, 256));
  for (int n = 0; n < s.n; ++n) {  // the first clip at the far corner, the second at the origin
    const int max_y = s.h - s.out_h, max_x = s.w - s.out_w;
    crops[2 * n] = n == 0 ? max_y : n == 1 ? 0 : int(uniform(0, float(max_y) + 0.999f));
    crops[2 * n + 1] = n == 0 ? max_x : n == 1 ? 0 : int(uniform(0, float(max_x) + 0.999f));
    flips[n] = uint8_t(n % 2);
  }
  for (float& v : mean)
    v = uniform(100, 160);
  const float scale = 1.f / 58.395f;
  std::vector<double> mean_d(mean.begin(), mean.end()), y_ref(s.output_size());
  cpu::input_transform<double>(s, x.data(), crops.data(), flips.data(),
                               ic.with_mean ? mean_d.data() : nullptr, double(scale), y_ref.data());

  Buffer y(s.output_size(), ic.offset);
  const auto out = in_every_schedule([&] {
    y.poison_all();
    cuda::input_transform(s, x.data(), crops.data(), flips.data(),
                          ic.with_mean ? mean.data() : nullptr, scale, y.data(), nullptr);
    EXPECT_TRUE(y.guards_intact()) << "wrote outside y";
    return std::vector<std::vector<float>>{y.values()};
  });
  EXPECT_LT(relative_error(out[0], y_ref), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Shapes, InputTransformEmulation, ::testing::ValuesIn(kInputTransformCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- softmax + cross-entropy
// ----------------------------------------------------------------------

struct SoftmaxXentCase {
  const char* name;
  cpu::SoftmaxXentShape s;
};

// Both forward paths: one block (at most 256 rows and 64 Ki values) and one warp per row with a
// second pass for the mean; rows of fewer and more classes than a warp.
const SoftmaxXentCase kSoftmaxXentCases[] = {
    {"OneBlock_32x101", {32, 101}},   {"OneBlock_7x1000", {7, 1000}},
    {"OneBlock_256x256", {256, 256}}, {"OneBlock_1x1", {1, 1}},
    {"Rows_300x37", {300, 37}},       {"Rows_40x2000", {40, 2000}},
    {"Rows_257x3", {257, 3}},
};

class SoftmaxXentEmulation : public ::testing::TestWithParam<SoftmaxXentCase> {};

TEST_P(SoftmaxXentEmulation, ForwardAndBackwardMatchTheCpu) {
  const cpu::SoftmaxXentShape s = GetParam().s;
  std::vector<float> logits(s.size());
  std::vector<int32_t> labels(s.rows);
  for (float& v : logits)
    v = uniform(-4, 4);
  for (int32_t& l : labels)
    l = int32_t(uniform(0, float(s.classes) - 0.001f));
  labels.front() = 0, labels.back() = s.classes - 1;
  const float dloss = 0.7f;
  std::vector<double> logits_d(logits.begin(), logits.end()), probs_ref(s.size()), loss_ref(1),
      dlogits_ref(s.size()), dloss_d{double(dloss)};
  cpu::softmax_xent_fwd<double>(s, logits_d.data(), labels.data(), probs_ref.data(),
                                loss_ref.data());
  cpu::softmax_xent_bwd<double>(s, probs_ref.data(), labels.data(), dloss_d.data(),
                                dlogits_ref.data());

  Buffer probs(s.size()), loss(1), dlogits(s.size());
  const auto out = in_every_schedule([&] {
    for (Buffer* b : {&probs, &loss, &dlogits})
      b->poison_all();
    cuda::softmax_xent_fwd(s, logits.data(), labels.data(), probs.data(), loss.data(), nullptr);
    cuda::softmax_xent_bwd(s, probs.data(), labels.data(), &dloss, dlogits.data(), nullptr);
    for (Buffer* b : {&probs, &loss, &dlogits})
      EXPECT_TRUE(b->guards_intact()) << "wrote outside";
    return std::vector<std::vector<float>>{probs.values(), loss.values(), dlogits.values()};
  });
  EXPECT_LT(relative_error(out[0], probs_ref), 1e-5) << "probs";
  EXPECT_LT(relative_error(out[1], loss_ref), 1e-5) << "loss";
  EXPECT_LT(relative_error(out[2], dlogits_ref), 1e-5) << "dlogits";
}

INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxXentEmulation, ::testing::ValuesIn(kSoftmaxXentCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cu3d
