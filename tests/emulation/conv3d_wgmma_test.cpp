// Versions 5, 6, 7 and 8 of the conv3d forward (conv3d_wgmma.cuh, conv3d_wgmma_ws.cuh,
// conv3d_wgmma_tma.cuh, conv3d_wgmma_cluster.cuh), the real kernel code with every epilogue, run
// on the CPU by the block emulator (block.h; version 8's clusters of two blocks emulated
// together): against a double-precision reference, every output written exactly once, no fault
// of the copies, the wgmma operands or the mbarrier hand-overs (within a block and across a
// cluster) in any of four schedules, and versions 6-8 bit for bit equal to version 5 (the same
// instructions on the same data in the same order).
//
// These cannot measure speed and do not prove the descriptors match what the hardware reads (the
// emulator decodes them as the PTX ISA describes; ConvWgmmaLayout.* checks that decoding
// independently, and the GPU suite runs the kernels on a GPU); nor that the TMA walks an im2col
// box as the emulator's model of the PTX ISA's description does (the GPU suite's bitwise
// comparison of versions 7 and 5 does). What they do prove, on every CI
// run without a GPU: the pipelines' ordering (a slot refilled before its wgmma completed, a
// stage handed over before it landed or without its proxy fence, a lost or doubled arrival, a
// wrong parity) and the epilogues' indexing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "block.h"
#include "conv_reference.h"
#include "kernels/cpu/pool3d.h"
#include "kernels/cuda/conv3d_fwd_problems.cuh"
#include "kernels/cuda/conv3d_wgmma.cuh"
#include "kernels/cuda/conv3d_wgmma_cluster.cuh"
#include "kernels/cuda/conv3d_wgmma_tma.cuh"
#include "kernels/cuda/conv3d_wgmma_ws.cuh"
#include "test_buffers.h"

namespace cu3d::cuda {
namespace {

using emu_test::relative_error;  // a poisoned (never written) value counts as a miss of 1e30
using emu_test::round_to;
using pipelined::wgmma::ShortTile;
using pipelined::wgmma::TallTile;

// Counts each write of an output, around the real problem's own.
struct WriteCounts {
  std::vector<int> y, pooled, stats;
  long outside = 0;  // writes out of bounds, or to a group or row the epilogue must not touch
};

template <class Base>
struct Counted : Base {
  WriteCounts* counts;
  void store(int m, int n, float acc, int split) const {
    if (m < 0 || m >= this->M || n < 0 || n >= this->N) return void(counts->outside++);
    Base::store(m, n, acc, split);
    counts->y[int64_t(m) * this->N + n]++;
  }
  int window_rows() const requires requires(const Base& b) { b.window_rows(); }
  { return Base::window_rows(); }
  void pool_window(int m, int n, float v) const requires requires(const Base& b) {
    b.pool_window(0, 0, 0.f);
  }
  {
    const int64_t q = int64_t(this->out.div_win.div(m)) * this->N + n;
    if (m % this->out.win || n >= this->N || q >= int64_t(counts->pooled.size()))
      return void(counts->outside++);
    Base::pool_window(m, n, v);
    counts->pooled[q]++;
  }
  void row_stats(int m, int group, float sum, float m2) const requires requires(const Base& b) {
    b.row_stats(0, 0, 0.f, 0.f);
  }
  {
    const int64_t i = int64_t(m) * this->out.groups + group;
    if (m < 0 || m >= this->M || group < 0 || group >= this->out.groups)
      return void(counts->outside++);
    Base::row_stats(m, group, sum, m2);
    counts->stats[i]++;
  }
};

enum class Epilogue { store, pool_rows, stats };

struct Case {
  const char* name;
  Epilogue epilogue;
  int n;
  Dims3 in;
  int c, k;
  Dims3 kernel, stride, pad_before, pad_after;
  Dims3 window{1, 1, 1}, pool_stride{1, 1, 1}, pool_pad{0, 0, 0};
};

constexpr Dims3 kOne{1, 1, 1}, kZero{0, 0, 0};

// Shapes (c a multiple of 64: a whole stage row in both precisions) that reach every branch of the
// pipelines and epilogues: partial M and N tiles, several M tiles, 1 to 14 r-tiles per block (fewer
// than the ring's stages, and counts that are not multiples of 4), uneven
// strides and asymmetric padding, pools of 8 and 4 rows per window, k = 64 (layer-norm groups past
// the columns) and k = 136, 192.
// clang-format off
const Case kCases[] = {
    // name, epilogue, n, in, c, k, kernel, stride, pad before, pad after[, pool window, stride, pad]
    {"PoolRows2x2x2", Epilogue::pool_rows, 1, {4, 6, 6}, 64, 128, {3, 3, 3}, kOne, kOne, kOne,
     {2, 2, 2}, {2, 2, 2}},
    {"PoolRows1x2x2_n2_k136", Epilogue::pool_rows, 2, {2, 8, 10}, 64, 136, {1, 3, 3}, kOne,
     {0, 1, 1}, {0, 1, 1}, {1, 2, 2}, {1, 2, 2}},
    {"PoolRows_k192_three_rtiles", Epilogue::pool_rows, 1, {4, 8, 10}, 64, 136, {1, 1, 3}, kOne,
     {0, 0, 1}, {0, 0, 1}, {2, 2, 2}, {2, 2, 2}},
    {"Stats_k64", Epilogue::stats, 1, {4, 6, 6}, 64, 64, {3, 3, 3}, kOne, kOne, kOne},
    {"Stats_k136_strided_asymmetric", Epilogue::stats, 1, {3, 9, 7}, 128, 136, {1, 3, 2},
     {1, 2, 1}, {0, 2, 0}, {1, 0, 1}},
    {"Stats_k200_two_n_tiles", Epilogue::stats, 1, {3, 5, 6}, 64, 200, {1, 3, 3}, kOne,
     {0, 1, 1}, {0, 1, 1}},
    {"Store_five_rtiles", Epilogue::store, 1, {3, 7, 9}, 64, 128, {1, 1, 5}, kOne, {0, 0, 2},
     {0, 0, 2}},
    {"Store_two_m_tiles_k256", Epilogue::store, 1, {4, 9, 8}, 64, 256, {1, 3, 3}, kOne, {0, 1, 1},
     {0, 1, 1}},
    {"Store_one_rtile_k160", Epilogue::store, 1, {3, 7, 9}, 64, 160, kOne, kOne, kZero, kZero},
    {"Store_seven_rtiles_n2", Epilogue::store, 2, {2, 5, 7}, 64, 128, {1, 1, 7}, kOne, {0, 0, 3},
     {0, 0, 3}},
    {"Store_asymmetric_same_n2_k136", Epilogue::store, 2, {3, 5, 6}, 64, 136, {2, 3, 2}, kOne,
     {1, 2, 0}, {0, 0, 1}},
};
// clang-format on

void PrintTo(const Case& cs, std::ostream* os) {
  *os << cs.name;
}

// c = 32: a whole stage row in tf32 only (32 fp32 values = 128 bytes).
// clang-format off
const Case kTf32Cases[] = {
    {"Stats_c32_three_rtiles", Epilogue::stats, 1, {3, 7, 9}, 32, 128, {1, 1, 3}, kOne, {0, 0, 1},
     {0, 0, 1}},
    {"Store_c32_one_rtile_k130", Epilogue::store, 1, {3, 7, 9}, 32, 130, kOne, kOne, kZero, kZero},
};
// clang-format on

// One case's inputs (rounded to the precision, so that the double reference multiplies exactly
// what the tensor cores do) and its reference outputs.
struct Setup {
  Conv3dShape s;
  Pool3dShape p;
  int M = 0, N = 0, groups = 0;
  std::vector<float> x, w, bias;
  std::vector<uint16_t> x_bf16, w_bf16;
  std::vector<double> y;       // reference conv + bias
  std::vector<double> pooled;  // the max over each pool window of relu(y)
};

Setup make_setup(const Case& cs, Precision precision) {
  Setup st;
  Conv3dShape& s = st.s;
  s.n = cs.n, s.c = cs.c, s.k = cs.k, s.in = cs.in, s.kernel = cs.kernel, s.stride = cs.stride;
  s.pad_before = cs.pad_before, s.pad_after = cs.pad_after;
  auto out = [](int in, int before, int after, int kernel, int stride) {
    return (in + before + after - kernel) / stride + 1;
  };
  s.out = {out(s.in.d, s.pad_before.d, s.pad_after.d, s.kernel.d, s.stride.d),
           out(s.in.h, s.pad_before.h, s.pad_after.h, s.kernel.h, s.stride.h),
           out(s.in.w, s.pad_before.w, s.pad_after.w, s.kernel.w, s.stride.w)};
  st.M = s.n * s.out.d * s.out.h * s.out.w;
  st.N = s.k;
  Pool3dShape& p = st.p;
  p.n = s.n, p.c = s.k, p.in = s.out, p.window = cs.window, p.stride = cs.pool_stride;
  p.pad_before = p.pad_after = cs.pool_pad;
  p.out = {out(p.in.d, p.pad_before.d, p.pad_after.d, p.window.d, p.stride.d),
           out(p.in.h, p.pad_before.h, p.pad_after.h, p.window.h, p.stride.h),
           out(p.in.w, p.pad_before.w, p.pad_after.w, p.window.w, p.stride.w)};
  st.groups = (s.k + igemm::kBN - 1) / igemm::kBN * igemm::row_stat_groups_per_tile(precision);

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  st.x.resize(s.input_size());
  st.w.resize(s.filter_size());
  st.bias.resize(st.N);
  for (float& v : st.x)
    v = round_to(uniform(rng), precision);
  for (float& v : st.w)
    v = round_to(uniform(rng), precision);
  for (float& v : st.bias)
    v = 0.5f * uniform(rng);
  auto top_half = [](const std::vector<float>& from, std::vector<uint16_t>& to) {
    to.resize(from.size());
    for (size_t i = 0; i < from.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &from[i], 4);
      to[i] = uint16_t(u >> 16);
    }
  };
  top_half(st.x, st.x_bf16);
  top_half(st.w, st.w_bf16);

  st.y = emu_test::conv_reference(s, st.x, st.w, st.bias).y;
  std::vector<double> relu(st.y.size());
  for (size_t i = 0; i < st.y.size(); ++i)
    relu[i] = std::max(st.y[i], 0.0);
  st.pooled.resize(p.output_size());
  cpu::maxpool3d_fwd_naive<double>(p, relu.data(), st.pooled.data());
  return st;
}

struct Outputs {
  std::vector<float> y, pooled;
  std::vector<float2> stats;
  WriteCounts counts;
  emu::Report report;
};

// Version 7's grid in the emulation: fewer blocks than most cases' output tiles; version 8's,
// fewer clusters than some cases' units.
constexpr int kPersistentBlocks = 3, kPersistentClusters = 2;

struct Run {
  int version;  // 5, 6, 7 or 8
  emu::Schedule schedule;
  unsigned seed;
  uint32_t dynamic_base;  // 4096: the ring's 1 KB alignment holds already; 4112: the kernel aligns
};

// Version 8's units of work for the case: (M tile, pair of N tiles) or (pair of M tiles, N tile).
template <class Tile>
int cluster_units(const Setup& st) {
  namespace wgmma = pipelined::wgmma;
  return wgmma::cluster_share(st.N) == wgmma::ClusterShare::a_tile
             ? wgmma::ClusterTiles<Tile, wgmma::ClusterShare::a_tile>(st.M, st.N).count
             : wgmma::ClusterTiles<Tile, wgmma::ClusterShare::b_tile>(st.M, st.N).count;
}

template <Precision P, class Tile>
Outputs launch(const Case& cs, const Setup& st, const Run& run) {
  Outputs o;
  o.y.assign(int64_t(st.M) * st.N, emu_test::poison());
  const int64_t pooled_size = st.p.output_size();
  o.pooled.assign(pooled_size, emu_test::poison());
  o.stats.assign(int64_t(st.M) * st.groups, float2{emu_test::poison(), emu_test::poison()});
  o.counts.y.assign(o.y.size(), 0);
  o.counts.pooled.assign(o.pooled.size(), 0);
  o.counts.stats.assign(o.stats.size(), 0);
  const void* x = P == Precision::bf16 ? static_cast<const void*>(st.x_bf16.data()) : st.x.data();
  const void* w = P == Precision::bf16 ? static_cast<const void*>(st.w_bf16.data()) : st.w.data();

  const char* op = "emulation";
  emu::reset_report();
  auto grid = [&](auto prob) {
    using Problem = decltype(prob);
    prob.counts = &o.counts;
    emu::BlockConfig config;
    config.threads = run.version == 5 ? pipelined::kThreads : pipelined::wgmma::kWsThreads;
    pipelined::wgmma::TmaMaps maps{};
    if (run.version == 7)
      maps = pipelined::wgmma::conv_tma_maps<Tile>(st.s, x, w, P == Precision::bf16 ? 2 : 4, op);
    const auto share = pipelined::wgmma::cluster_share(st.N);
    if (run.version == 8 && share == pipelined::wgmma::ClusterShare::a_tile)
      maps = pipelined::wgmma::conv_cluster_maps<Tile, pipelined::wgmma::ClusterShare::a_tile>(
          st.s, x, w, P == Precision::bf16 ? 2 : 4, op);
    if (run.version == 8 && share == pipelined::wgmma::ClusterShare::b_tile)
      maps = pipelined::wgmma::conv_cluster_maps<Tile, pipelined::wgmma::ClusterShare::b_tile>(
          st.s, x, w, P == Precision::bf16 ? 2 : 4, op);
    config.schedule = run.schedule;
    config.dynamic_base = run.dynamic_base;
    config.dynamic_bytes = Tile::kSharedBytes;
    const int blocks_n = (st.N + Tile::kBN - 1) / Tile::kBN;
    const int blocks_m = (st.M + Tile::kBM - 1) / Tile::kBM;
    auto block = [&](int bx, int by) {
      config.block_x = bx, config.block_y = by;
      config.seed = run.seed + 977 * (by * blocks_n + bx);
      emu::run_block(
          [&] {
            if (run.version == 5)
              pipelined::wgmma::conv3d_fwd_wgmma<Problem, P, Tile>(prob, x, w);
            else if (run.version == 6)
              pipelined::wgmma::conv3d_fwd_wgmma_ws<Problem, P, Tile>(prob, x, w);
            else if (run.version == 7)
              pipelined::wgmma::conv3d_fwd_wgmma_tma<Problem, P, Tile>(prob, maps);
            else if (share == pipelined::wgmma::ClusterShare::a_tile)
              pipelined::wgmma::conv3d_fwd_wgmma_cluster<Problem, P, Tile,
                                                         pipelined::wgmma::ClusterShare::a_tile>(
                  prob, maps);
            else
              pipelined::wgmma::conv3d_fwd_wgmma_cluster<Problem, P, Tile,
                                                         pipelined::wgmma::ClusterShare::b_tile>(
                  prob, maps);
          },
          config);
    };
    if (run.version == 8) {
      // Persistent clusters of two blocks, emulated together: each cluster one emulated block
      // of twice the threads, each of its blocks with its own shared memory.
      const int units = cluster_units<Tile>(st);
      const int clusters = std::min(units, kPersistentClusters);
      config.cluster = pipelined::wgmma::kClusterBlocks;
      config.threads *= config.cluster;
      config.dynamic_bytes = pipelined::wgmma::kClusterSharedBytes<Tile>;
      config.grid_dim = {unsigned(clusters * config.cluster), 1, 1};
      for (int c = 0; c < clusters; ++c)
        block(c * config.cluster, 0);
      return;
    }
    if (run.version == 7) {
      // Persistent: a grid of fewer blocks than output tiles, each taking every third tile, so
      // the ring runs on from one tile to the next.
      const int blocks = std::min(blocks_m * blocks_n, kPersistentBlocks);
      config.grid_dim = {unsigned(blocks), 1, 1};
      for (int b = 0; b < blocks; ++b)
        block(b, 0);
      return;
    }
    config.grid_dim = {unsigned(blocks_n), unsigned(blocks_m), 1};
    for (int by = 0; by < blocks_m; ++by)
      for (int bx = 0; bx < blocks_n; ++bx)
        block(bx, by);
  };
  switch (cs.epilogue) {
    case Epilogue::store: {
      auto prob = fwd::make_problem<Counted<fwd::FwdProblem<fwd::StoreOut>>>(
          st.s, st.x.data(), st.w.data(), st.bias.data(), op);
      prob.out = {o.y.data(), false};
      grid(prob);
      break;
    }
    case Epilogue::pool_rows: {
      auto prob = fwd::make_problem<Counted<fwd::FwdPoolRowsProblem>>(
          st.s, st.x.data(), st.w.data(), st.bias.data(), op);
      prob.out = fwd::pool_rows_out(st.p, o.pooled.data());
      grid(prob);
      break;
    }
    case Epilogue::stats: {
      auto prob = fwd::make_problem<Counted<fwd::FwdStatsProblem>>(st.s, st.x.data(), st.w.data(),
                                                                   st.bias.data(), op);
      prob.out = {o.y.data(), o.stats.data(), st.groups};
      grid(prob);
      break;
    }
  }
  o.report = emu::report();
  return o;
}

// Everything the epilogue must have written, once each, against the reference.
void expect_outputs(const Case& cs, const Setup& st, const Outputs& o, Precision precision) {
  EXPECT_EQ(o.report.total_faults(), 0) << o.report.summary();
  EXPECT_EQ(o.counts.outside, 0) << "writes outside the outputs, or to rows/groups not owned";
  long not_once = 0;
  for (int c : o.counts.y)
    not_once += c != 1;  // every epilogue stores through store() once
  EXPECT_EQ(not_once, 0) << "outputs not stored exactly once";
  if (cs.epilogue == Epilogue::store || cs.epilogue == Epilogue::stats) {
    EXPECT_LT(relative_error(o.y, st.y), 1e-6);
  }
  if (cs.epilogue == Epilogue::pool_rows) {
    EXPECT_LT(relative_error(o.pooled, st.pooled), 1e-6);
    long pooled_not_once = 0;
    for (int c : o.counts.pooled)
      pooled_not_once += c != 1;
    EXPECT_EQ(pooled_not_once, 0) << "pooled outputs not written exactly once";
    EXPECT_GT(o.report.shuffles, 0);
  }
  if (cs.epilogue != Epilogue::stats) return;
  // Each (row, group of row_stat_group_width columns) with a valid column: the sum and the
  // centred sum of squares of the stored values; a group past the last column is not written.
  const int width = igemm::row_stat_group_width(precision);
  long wrong = 0, stats_not_once = 0, empty_written = 0;
  for (int m = 0; m < st.M; ++m)
    for (int g = 0; g < st.groups; ++g) {
      const int64_t i = int64_t(m) * st.groups + g;
      const int c0 = width * g, c1 = std::min(st.N, width * (g + 1));
      if (c1 <= c0) {
        empty_written += o.counts.stats[i] != 0;
        continue;
      }
      stats_not_once += o.counts.stats[i] != 1;
      double sum = 0, magnitude = 0, m2 = 0;
      for (int n = c0; n < c1; ++n)
        sum += float(st.y[int64_t(m) * st.N + n]);
      for (int n = c0; n < c1; ++n)
        magnitude += std::fabs(float(st.y[int64_t(m) * st.N + n]));
      const double mean = sum / (c1 - c0);
      for (int n = c0; n < c1; ++n) {
        const double d = float(st.y[int64_t(m) * st.N + n]) - mean;
        m2 += d * d;
      }
      const float2 got = o.stats[i];
      wrong +=
          !(std::fabs(got.x - sum) <= 1e-5 * magnitude) || !(std::fabs(got.y - m2) <= 1e-5 * m2);
    }
  EXPECT_EQ(wrong, 0) << "layer-norm row statistics off";
  EXPECT_EQ(stats_not_once, 0) << "row statistics not written exactly once";
  EXPECT_EQ(empty_written, 0) << "row statistics written for a group with no column";
}

bool same_bits(const Outputs& a, const Outputs& b) {
  auto same = [](const auto& u, const auto& v) {
    return u.size() == v.size() && std::memcmp(u.data(), v.data(), sizeof(u[0]) * u.size()) == 0;
  };
  return same(a.y, b.y) && same(a.pooled, b.pooled) && same(a.stats, b.stats);
}

// `version` (6 or 7) in three schedules: threads in order; reversed, with the dynamic shared
// memory 16 bytes off its alignment (the kernel rounds it up); random (seed `seed`). Each run
// against the reference and bit for bit against version 5's outputs, then more(run, outputs).
template <Precision P, class Tile, class More>
void check_schedules(const Case& cs, const Setup& st, const Outputs& v5, int version, unsigned seed,
                     More more) {
  const Run runs[] = {{version, emu::Schedule::in_order, 1, 4096},
                      {version, emu::Schedule::reversed, 1, 4112},
                      {version, emu::Schedule::random, seed, 4112}};
  for (const Run& run : runs) {
    SCOPED_TRACE("version " + std::to_string(version) + ", schedule " +
                 std::to_string(int(run.schedule)) + ", dynamic base " +
                 std::to_string(run.dynamic_base));
    const Outputs out = launch<P, Tile>(cs, st, run);
    expect_outputs(cs, st, out, P);
    EXPECT_TRUE(same_bits(out, v5)) << "version " << version << " differs from version 5";
    more(run, out);
  }
}

template <Precision P, class Tile>
void check_case(const Case& cs) {
  ASSERT_EQ(cs.c % (P == Precision::bf16 ? 64 : 32), 0) << "as conv3d_fwd_wgmma_supports";
  const Setup st = make_setup(cs, P);
  const Outputs v5 = launch<P, Tile>(cs, st, {5, emu::Schedule::in_order, 1, 4096});
  {
    SCOPED_TRACE("version 5");
    expect_outputs(cs, st, v5, P);
  }
  check_schedules<P, Tile>(cs, st, v5, 6, 1234, [](const Run& run, const Outputs& v6) {
    // In order, the math warps run first and must wait for the producer's first stage.
    if (run.schedule == emu::Schedule::in_order) {
      EXPECT_GT(v6.report.mbarrier_polls, 0) << "the math never waited for a stage";
    }
  });
  // Version 7 where conv3d_fwd.cu runs it: stride 1, rows in GEMM order (not the pool block's).
  if (cs.epilogue == Epilogue::pool_rows || !(cs.stride == kOne)) return;
  check_schedules<P, Tile>(cs, st, v5, 7, 4321, [&](const Run&, const Outputs& v7) {
    const int tiles = (st.M + Tile::kBM - 1) / Tile::kBM * ((st.N + Tile::kBN - 1) / Tile::kBN);
    const int r_tiles =
        st.s.kernel.d * st.s.kernel.h * st.s.kernel.w * cs.c / (P == Precision::bf16 ? 64 : 32);
    EXPECT_EQ(v7.report.bulk_copies, 2L * tiles * r_tiles) << "one A and one B load per stage";
    EXPECT_EQ(v7.report.copies, 0) << "version 7 issued cp.async";
  });
  // Version 8 where conv3d_fwd.cu runs it: version 7's shapes, sharing A where the N tiles pair
  // up (k = 136, 160, 200, 256 here), else B (k = 64, 128).
  check_schedules<P, Tile>(cs, st, v5, 8, 5678, [&](const Run&, const Outputs& v8) {
    const int r_tiles =
        st.s.kernel.d * st.s.kernel.h * st.s.kernel.w * cs.c / (P == Precision::bf16 ? 64 : 32);
    // Per block and stage: its half of the shared tile, counted once in each block it reaches,
    // and its own other tile; two blocks per unit (a pair's second M tile past the last row
    // too).
    EXPECT_EQ(v8.report.bulk_copies, 6L * cluster_units<Tile>(st) * r_tiles)
        << "one half and one whole tile per block and stage";
    EXPECT_EQ(v8.report.copies, 0) << "version 8 issued cp.async";
  });
}

class ConvWgmmaEmulation : public ::testing::TestWithParam<Case> {};

TEST_P(ConvWgmmaEmulation, Bf16TallTile) {
  check_case<Precision::bf16, TallTile>(GetParam());
}
TEST_P(ConvWgmmaEmulation, Bf16ShortTile) {
  check_case<Precision::bf16, ShortTile>(GetParam());
}
TEST_P(ConvWgmmaEmulation, Tf32TallTile) {
  check_case<Precision::tf32, TallTile>(GetParam());
}
TEST_P(ConvWgmmaEmulation, Tf32ShortTile) {
  check_case<Precision::tf32, ShortTile>(GetParam());
}

class ConvWgmmaEmulationTf32 : public ::testing::TestWithParam<Case> {};

TEST_P(ConvWgmmaEmulationTf32, TallTile) {
  check_case<Precision::tf32, TallTile>(GetParam());
}
TEST_P(ConvWgmmaEmulationTf32, ShortTile) {
  check_case<Precision::tf32, ShortTile>(GetParam());
}

auto case_name = [](const auto& info) { return std::string(info.param.name); };
INSTANTIATE_TEST_SUITE_P(Shapes, ConvWgmmaEmulation, ::testing::ValuesIn(kCases), case_name);
INSTANTIATE_TEST_SUITE_P(Shapes, ConvWgmmaEmulationTf32, ::testing::ValuesIn(kTf32Cases),
                         case_name);

}  // namespace
}  // namespace cu3d::cuda
