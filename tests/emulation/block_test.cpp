// The block emulator's own checks (block.h), on small kernels written for the purpose: each
// ordering mistake the conv kernels could make is shown to be reported, and the correct form of
// each to run clean. Without these, a clean run of the conv kernels could mean a blind emulator.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "block.h"
#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/cuda/conv3d_wgmma_layout.h"
#include "kernels/cuda/ptx.cuh"
#include "kernels/cuda/tensor_map.h"

namespace cu3d::emu {
namespace {

namespace ptx = cuda::ptx;

BlockConfig threads(int n, Schedule schedule = Schedule::in_order) {
  BlockConfig config;
  config.threads = n;
  config.schedule = schedule;
  return config;
}

TEST(BlockEmulator, ShuffleExchangesValuesAcrossLanes) {
  std::vector<int> got(64, -1);
  reset_report();
  run_block([&] { got[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 5); },
            threads(64, Schedule::random));
  EXPECT_EQ(report().total_faults(), 0) << report().summary();
  EXPECT_EQ(report().shuffles, 2);  // one per warp
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(got[i], i ^ 5);
}

TEST(BlockEmulator, ShuffleOfHalfAWarpIsAFault) {
  reset_report();
  run_block(
      [&] {
        if (threadIdx.x % 32 < 16) __shfl_xor_sync(0xffffffffu, 1, 1);
      },
      threads(32));
  EXPECT_GT(report()[Fault::shuffle_divergence], 0) << report().summary();
}

// Threads 32 .. 32 + arrivals - 1 write their values and arrive on a barrier that expects 32
// arrivals; threads 0-31 wait for its first phase and read the values.
void hand_over(int arrivals, std::vector<int>& seen) {
  static uint64_t bar;  // __shared__
  static int data[32];  // __shared__
  run_block(
      [&] {
        if (threadIdx.x == 0) ptx::mbarrier_init(&bar, 32);
        __syncthreads();
        if (threadIdx.x >= 32) {
          data[threadIdx.x - 32] = 100 + threadIdx.x;
          if (int(threadIdx.x) < 32 + arrivals) ptx::mbarrier_arrive(&bar);
        } else {
          while (!ptx::mbarrier_try_wait(&bar, 0)) {
          }
          seen[threadIdx.x] = data[31 - threadIdx.x];
        }
      },
      threads(64));
}

TEST(BlockEmulator, MbarrierHandsDataOver) {
  std::vector<int> seen(32, -1);
  reset_report();
  hand_over(32, seen);
  EXPECT_EQ(report().total_faults(), 0) << report().summary();
  EXPECT_GT(report().mbarrier_polls, 0);  // in order, the waiters ran first
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(seen[i], 100 + 32 + 31 - i);
}

TEST(BlockEmulator, MbarrierPhaseMissingAnArrivalIsADeadlock) {
  std::vector<int> seen(32, -1);
  reset_report();
  hand_over(31, seen);
  EXPECT_EQ(report()[Fault::deadlock], 1) << report().summary();
  EXPECT_EQ(report()[Fault::mbarrier_phase_unfinished], 1);
}

TEST(BlockEmulator, MbarrierArrivingTwiceInAPhaseIsAFault) {
  static uint64_t bar;
  reset_report();
  run_block(
      [&] {
        if (threadIdx.x == 0) {
          ptx::mbarrier_init(&bar, 4);
          ptx::mbarrier_arrive(&bar);
          ptx::mbarrier_arrive(&bar);
        }
      },
      threads(32));
  EXPECT_GT(report()[Fault::mbarrier_double_arrival], 0) << report().summary();
  EXPECT_GT(report()[Fault::mbarrier_phase_unfinished], 0);
}

// One m64n128k16 bf16 wgmma by one warpgroup on operands copied in by cp.async, laid out as the
// conv kernels lay out a stage (128-byte rows, chunks swizzled, 1 KB aligned), in four forms:
// right, and with each of the three ordering steps missing.
enum class Mistake { none, no_wait_for_copies, no_proxy_fence, refill_before_wgmma_completes };

struct Operands {
  std::vector<uint16_t> a, b;  // bf16 bits: A 64 x 16, B 128 x 16 (K-major rows)
  std::vector<float> d = std::vector<float>(128 * 64, 0.f);
};

// `count` random bf16 values (as bits) that are multiples of 1/4 in [-2, 2]: exact in bf16, and
// their products' sums exact in float.
std::vector<uint16_t> random_bf16(size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> small(-8, 8);
  std::vector<uint16_t> bits(count);
  for (uint16_t& h : bits) {
    const float f = float(small(rng)) / 4.f;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    h = uint16_t(u >> 16);
  }
  return bits;
}

Operands random_operands() {
  Operands o;
  o.a = random_bf16(64 * 16, 3);
  o.b = random_bf16(128 * 16, 4);
  return o;
}

float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The outputs of one m64n128k16 instruction (d, 64 rows of 128) that differ from the sums of
// a(m, k) * b(n, k) over its 16 values of k.
template <class A, class B>
long wrong_products(const std::vector<float>& d, A a, B b) {
  long wrong = 0;
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 128; ++n) {
      float want = 0;
      for (int k = 0; k < 16; ++k)
        want += a(m, k) * b(n, k);
      wrong += d[m * 128 + n] != want;
    }
  return wrong;
}

void one_wgmma(Operands& o, Mistake mistake) {
  using namespace cuda::pipelined;
  using namespace cuda::pipelined::wgmma;
  const int kBytesB = 128 * kRowBytes;
  BlockConfig config = threads(kGroupThreads, Schedule::random);
  config.dynamic_bytes = 64 * kRowBytes + kBytesB + kAtomBytes;
  run_block(
      [&] {
        const int tid = threadIdx.x;
        const uint32_t a_tile =
            (ptx::shared_address(ptx::dynamic_shared_memory()) + kAtomBytes - 1) &
            ~(kAtomBytes - 1);
        const uint32_t b_tile = a_tile + 64 * kRowBytes;
        auto copy = [&](uint32_t tile, const std::vector<uint16_t>& m, int row, int chunk) {
          ptx::cp_async16(tile + swizzled(row, chunk), &m[row * 16 + chunk * 8], 16);
        };
        copy(a_tile, o.a, tid / 2, tid % 2);  // 64 rows x the 2 chunks of k-step 0
        copy(b_tile, o.b, tid / 2, tid % 2);
        copy(b_tile, o.b, 64 + tid / 2, tid % 2);
        ptx::cp_async_commit();
        if (mistake != Mistake::no_wait_for_copies) ptx::cp_async_wait<0>();
        if (mistake != Mistake::no_proxy_fence) ptx::fence_proxy_async();
        __syncthreads();
        float acc[kAccumulators] = {};
        ptx::wgmma_fence();
        ptx::wgmma_m64n128<Precision::bf16>(acc, smem_descriptor(operand_address(a_tile, 0, 0)),
                                            smem_descriptor(operand_address(b_tile, 0, 0)));
        ptx::wgmma_commit();
        if (mistake == Mistake::refill_before_wgmma_completes) copy(a_tile, o.a, tid / 2, tid % 2);
        ptx::wgmma_wait<0>();
        ptx::cp_async_wait<0>();
        for (int i = 0; i < kAccumulators; ++i)
          o.d[TallTile::accumulator_row(tid, 0, i) * 128 + accumulator_col(tid, i)] = acc[i];
      },
      config);
}

TEST(BlockEmulator, WgmmaOnLandedFencedOperandsComputesTheProduct) {
  Operands o = random_operands();
  reset_report();
  one_wgmma(o, Mistake::none);
  ASSERT_EQ(report().total_faults(), 0) << report().summary();
  EXPECT_EQ(wrong_products(
                o.d, [&](int m, int k) { return bf16_value(o.a[m * 16 + k]); },
                [&](int n, int k) { return bf16_value(o.b[n * 16 + k]); }),
            0);
}

TEST(BlockEmulator, WgmmaBeforeTheCopiesLandIsAFault) {
  Operands o = random_operands();
  reset_report();
  one_wgmma(o, Mistake::no_wait_for_copies);
  EXPECT_GT(report()[Fault::operand_not_landed], 0) << report().summary();
}

TEST(BlockEmulator, WgmmaWithoutTheProxyFenceIsAFault) {
  Operands o = random_operands();
  reset_report();
  one_wgmma(o, Mistake::no_proxy_fence);
  EXPECT_GT(report()[Fault::operand_not_fenced], 0) << report().summary();
}

TEST(BlockEmulator, CopyOverAnOperandInFlightIsAFault) {
  Operands o = random_operands();
  reset_report();
  one_wgmma(o, Mistake::refill_before_wgmma_completes);
  EXPECT_GT(report()[Fault::copy_over_unread_operand], 0) << report().summary();
  EXPECT_GT(report()[Fault::operand_changed_in_flight], 0);
}

// The TMA (bulk tensor copies): one warpgroup multiplies an A tile that an im2col load gathers
// from a small NDHWC tensor (a 3x3x3 "same" conv's rows m0 .. m0 + 63 for one tap, starting
// mid-row and running past the last output position) by a B tile that a tiled load takes from
// a filter matrix (past its last row), handed over by an mbarrier with the loads' byte count; in
// three forms: right, without the wait, and with a byte count that lets the phase complete
// before the filters land.
enum class TmaMistake { none, no_wait, too_few_bytes };

struct TmaProblem {
  static constexpr int kN = 2, kD = 2, kH = 3, kW = 4, kC = 64, kFilters = 100;
  static constexpr int kTaps = 27, kM0 = 5, kTapD = 2, kTapH = 0, kTapW = 1, kTap = 5;
  std::vector<uint16_t> x, w;  // bf16 bits
  std::vector<float> d = std::vector<float>(64 * 128, -1.f);
};

// A(m, k): row m0 + m of the conv's implicit GEMM for the tap, channel k (k < 16: the
// instruction's k-step); zero in the padding and past the last of the 48 output positions.
float tma_a(const TmaProblem& p, int m, int k) {
  using P = TmaProblem;
  const int q = P::kM0 + m;
  const int x = q % P::kW, y = q / P::kW % P::kH, z = q / (P::kW * P::kH) % P::kD,
            n = q / (P::kW * P::kH * P::kD);
  const int ix = x - 1 + P::kTapW, iy = y - 1 + P::kTapH, iz = z - 1 + P::kTapD;
  if (n >= P::kN || ix < 0 || ix >= P::kW || iy < 0 || iy >= P::kH || iz < 0 || iz >= P::kD)
    return 0.f;
  return bf16_value(p.x[(((size_t(n) * P::kD + iz) * P::kH + iy) * P::kW + ix) * P::kC + k]);
}
// B(filter, k): the filter's weights of the tap; zero past the last filter.
float tma_b(const TmaProblem& p, int filter, int k) {
  using P = TmaProblem;
  if (filter >= P::kFilters) return 0.f;
  return bf16_value(p.w[(size_t(filter) * P::kTaps + P::kTap) * P::kC + k]);
}

// The problem's maps: im2col boxes of `pixels` rows of x (a 3x3x3 "same" conv: pad_after 1 -
// (kernel 3 - 1) = -1), and 128 x 64 tiles of the filters.
std::array<cuda::TensorMap, 2> tma_maps(const TmaProblem& p, int pixels) {
  using P = TmaProblem;
  cuda::Im2colMapSpec a;
  a.base = p.x.data();
  a.n = P::kN, a.d = P::kD, a.h = P::kH, a.w = P::kW, a.c = P::kC;
  a.lower = {-1, -1, -1};
  a.upper = {-1, -1, -1};
  a.channels = 64;
  a.pixels = pixels;
  cuda::TiledMapSpec b;
  b.base = p.w.data();
  b.rows = P::kFilters;
  b.cols = int64_t(P::kTaps) * P::kC;
  b.box_rows = 128;
  b.box_cols = 64;
  return {cuda::encode_im2col_map(a, "test"), cuda::encode_tiled_map(b, "test")};
}

TmaProblem tma_problem() {
  TmaProblem p;
  p.x = random_bf16(size_t(p.kN) * p.kD * p.kH * p.kW * p.kC, 5);
  p.w = random_bf16(size_t(p.kFilters) * p.kTaps * p.kC, 6);
  return p;
}

void tma_wgmma(TmaProblem& p, TmaMistake mistake) {
  using namespace cuda::pipelined;
  using namespace cuda::pipelined::wgmma;
  using P = TmaProblem;
  const std::array<cuda::TensorMap, 2> maps = tma_maps(p, 64);
  const uint32_t a_bytes = 64 * kRowBytes, b_bytes = 128 * kRowBytes;
  BlockConfig config = threads(kGroupThreads);
  config.dynamic_bytes = a_bytes + b_bytes + kAtomBytes;
  static uint64_t full;  // __shared__
  run_block(
      [&] {
        const int tid = threadIdx.x;
        const uint32_t a_tile =
            (ptx::shared_address(ptx::dynamic_shared_memory()) + kAtomBytes - 1) &
            ~(kAtomBytes - 1);
        const uint32_t b_tile = a_tile + a_bytes;
        if (tid == 0) {
          ptx::mbarrier_init(&full, 1);
          ptx::fence_mbarrier_init();
        }
        __syncthreads();
        if (tid == 0) {
          // Output position kM0 = (n 0, z 0, y 1, x 1): its window's corner is one less.
          ptx::mbarrier_arrive_expect_tx(
              &full, mistake == TmaMistake::too_few_bytes ? a_bytes : a_bytes + b_bytes);
          ptx::tma_load_im2col_5d(a_tile, &maps[0], &full, 0, 1 - 1, 1 - 1, 0 - 1, 0, P::kTapW,
                                  P::kTapH, P::kTapD);
          ptx::tma_load_tile_2d(b_tile, &maps[1], &full, P::kTap * P::kC, 0);
        }
        if (mistake != TmaMistake::no_wait)
          while (!ptx::mbarrier_try_wait(&full, 0)) {
          }
        float acc[kAccumulators] = {};
        ptx::wgmma_fence();
        ptx::wgmma_m64n128<Precision::bf16>(acc, smem_descriptor(operand_address(a_tile, 0, 0)),
                                            smem_descriptor(operand_address(b_tile, 0, 0)));
        ptx::wgmma_commit();
        ptx::wgmma_wait<0>();
        for (int i = 0; i < kAccumulators; ++i)
          p.d[TallTile::accumulator_row(tid, 0, i) * 128 + accumulator_col(tid, i)] = acc[i];
      },
      config);
}

TEST(BlockEmulator, TmaLoadsGatherTheConvRowsForWgmma) {
  TmaProblem p = tma_problem();
  reset_report();
  tma_wgmma(p, TmaMistake::none);
  ASSERT_EQ(report().total_faults(), 0) << report().summary();
  EXPECT_EQ(report().bulk_copies, 2);
  auto a = [&](int m, int k) { return tma_a(p, m, k); };
  auto b = [&](int filter, int k) { return tma_b(p, filter, k); };
  EXPECT_EQ(wrong_products(p.d, a, b), 0);
}

TEST(BlockEmulator, WgmmaBeforeTheTmaLoadsCompleteIsAFault) {
  TmaProblem p = tma_problem();
  reset_report();
  tma_wgmma(p, TmaMistake::no_wait);
  EXPECT_GT(report()[Fault::operand_not_landed], 0) << report().summary();
}

TEST(BlockEmulator, TmaBytesLandingAfterThePhaseAreAFault) {
  TmaProblem p = tma_problem();
  reset_report();
  tma_wgmma(p, TmaMistake::too_few_bytes);
  EXPECT_GT(report()[Fault::operand_not_fenced], 0) << report().summary();
}

// ---- clusters ----------------------------------------------------------------------------------
// Two blocks of one warpgroup in a cluster multiply the same 64-row A tile, each block loading
// half of it (32 rows of the TmaProblem's im2col rows) by a multicast into both, and its own
// B tile (the same filters), on one mbarrier per block (in its dynamic shared memory, where the
// other block's multicast completes too). Mistakes: no cluster barrier between the mbarriers'
// init and the peer's first multicast; each block expecting only its own half's bytes; no
// cluster barrier before the blocks exit (one may leave while the other still multicasts into
// it).
enum class ClusterMistake { none, no_cluster_sync, own_half_only, no_final_sync };

void cluster_tma_wgmma(TmaProblem& p, std::vector<float>& d1, ClusterMistake mistake) {
  using namespace cuda::pipelined;
  using namespace cuda::pipelined::wgmma;
  using P = TmaProblem;
  const std::array<cuda::TensorMap, 2> maps = tma_maps(p, 32);  // half the tile per block
  const uint32_t a_bytes = 64 * kRowBytes, b_bytes = 128 * kRowBytes;
  launch_cluster(
      [&] {
        const int tid = threadIdx.x;
        const uint32_t rank = ptx::cluster_ctarank();
        auto* full = reinterpret_cast<uint64_t*>(ptx::dynamic_shared_memory());
        const uint32_t a_tile =
            (ptx::shared_address(ptx::dynamic_shared_memory()) + kAtomBytes - 1) &
            ~(kAtomBytes - 1);
        const uint32_t b_tile = a_tile + a_bytes;
        if (tid == 0) {
          ptx::mbarrier_init(full, 1);
          ptx::fence_mbarrier_init();
        }
        if (mistake == ClusterMistake::no_cluster_sync)
          __syncthreads();
        else
          ptx::cluster_sync();
        if (tid == 0) {
          const uint32_t expected =
              mistake == ClusterMistake::own_half_only ? a_bytes / 2 + b_bytes : a_bytes + b_bytes;
          ptx::mbarrier_arrive_expect_tx(full, expected);
          // The half's first output position; its window's corner is one less.
          const int q = P::kM0 + 32 * int(rank);
          const int x = q % P::kW, y = q / P::kW % P::kH, z = q / (P::kW * P::kH) % P::kD,
                    n = q / (P::kW * P::kH * P::kD);
          ptx::tma_load_im2col_5d_multicast(a_tile + rank * (a_bytes / 2), &maps[0], full, 0, x - 1,
                                            y - 1, z - 1, n, P::kTapW, P::kTapH, P::kTapD, 0b11);
          ptx::tma_load_tile_2d(b_tile, &maps[1], full, P::kTap * P::kC, 0);
        }
        while (!ptx::mbarrier_try_wait(full, 0)) {
        }
        float acc[kAccumulators] = {};
        ptx::wgmma_fence();
        ptx::wgmma_m64n128<Precision::bf16>(acc, smem_descriptor(operand_address(a_tile, 0, 0)),
                                            smem_descriptor(operand_address(b_tile, 0, 0)));
        ptx::wgmma_commit();
        ptx::wgmma_wait<0>();
        std::vector<float>& d = rank ? d1 : p.d;
        for (int i = 0; i < kAccumulators; ++i)
          d[TallTile::accumulator_row(tid, 0, i) * 128 + accumulator_col(tid, i)] = acc[i];
        // Neither block leaves while the other's copies may reach it.
        if (mistake != ClusterMistake::no_final_sync) ptx::cluster_sync();
      },
      Dim3(2), Dim3(kGroupThreads), a_bytes + b_bytes + kAtomBytes, 2);
}

TEST(BlockEmulator, ClusterMulticastFillsBothBlocks) {
  TmaProblem p = tma_problem();
  std::vector<float> d1(64 * 128, -1.f);
  reset_report();
  cluster_tma_wgmma(p, d1, ClusterMistake::none);
  ASSERT_EQ(report().total_faults(), 0) << report().summary();
  // Per block: its half of A, counted once per block it reaches, and its B.
  EXPECT_EQ(report().bulk_copies, 6);
  auto a = [&](int m, int k) { return tma_a(p, m, k); };
  auto b = [&](int filter, int k) { return tma_b(p, filter, k); };
  EXPECT_EQ(wrong_products(p.d, a, b), 0) << "block 0";
  EXPECT_EQ(wrong_products(d1, a, b), 0) << "block 1";
}

TEST(BlockEmulator, ClusterMulticastBeforeThePeersInitIsAFault) {
  TmaProblem p = tma_problem();
  std::vector<float> d1(64 * 128, -1.f);
  reset_report();
  cluster_tma_wgmma(p, d1, ClusterMistake::no_cluster_sync);
  EXPECT_GT(report()[Fault::mbarrier_misuse], 0) << report().summary();
}

TEST(BlockEmulator, ClusterMulticastBytesNotExpectedAreAFault) {
  TmaProblem p = tma_problem();
  std::vector<float> d1(64 * 128, -1.f);
  reset_report();
  cluster_tma_wgmma(p, d1, ClusterMistake::own_half_only);
  EXPECT_GT(report()[Fault::operand_not_fenced] + report()[Fault::operand_not_landed], 0)
      << report().summary();
}

TEST(BlockEmulator, ClusterBlockExitingBeforeThePeersMulticastIsAFault) {
  TmaProblem p = tma_problem();
  std::vector<float> d1(64 * 128, -1.f);
  reset_report();
  cluster_tma_wgmma(p, d1, ClusterMistake::no_final_sync);
  EXPECT_GT(report()[Fault::bad_instruction_use], 0) << report().summary();
}

// Remote arrivals and the blocks' own barriers: in each cluster of a 4-block grid, block 1's
// threads write a value and arrive on block 0's mbarrier (mapa); block 0's threads meet at
// __syncthreads (their block's barrier, not the cluster's: block 1 is waiting on nothing) and
// then wait for the phase and read the values. Without `remote` block 1 arrives on its own
// mbarrier instead: block 0 waits forever.
void remote_hand_over(bool remote, std::vector<int>& seen, std::vector<int>& index) {
  std::vector<int> data(4 * 64, -1);
  set_launch_schedule(Schedule::random, 7);
  launch_cluster(
      [&] {
        const uint32_t rank = ptx::cluster_ctarank();
        const int tid = threadIdx.x, block = blockIdx.x;
        index[block * 64 + tid] = int(rank) * 1000 + block * 64 + tid;
        auto* bar = reinterpret_cast<uint64_t*>(ptx::dynamic_shared_memory());
        if (tid == 0) ptx::mbarrier_init(bar, 64);
        ptx::cluster_sync();
        if (rank == 1) {
          data[block * 64 + tid] = 500 + block * 64 + tid;
          if (remote)
            ptx::mbarrier_arrive_cluster(bar, 0);
          else
            ptx::mbarrier_arrive(bar);
        } else {
          __syncthreads();
          while (!ptx::mbarrier_try_wait(bar, 0)) {
          }
          seen[block * 64 + tid] = data[(block + 1) * 64 + 63 - tid];
        }
        ptx::cluster_sync();
      },
      Dim3(4), Dim3(64), 64, 2);
  set_launch_schedule(Schedule::in_order);
}

TEST(BlockEmulator, ClusterRemoteArrivalHandsDataToThePeer) {
  std::vector<int> seen(4 * 64, -1), index(4 * 64, -1);
  reset_report();
  remote_hand_over(true, seen, index);
  EXPECT_EQ(report().total_faults(), 0) << report().summary();
  for (int block = 0; block < 4; ++block)
    for (int tid = 0; tid < 64; ++tid) {
      EXPECT_EQ(index[block * 64 + tid], block % 2 * 1000 + block * 64 + tid)
          << "blockIdx.x, threadIdx.x and the rank of block " << block << " thread " << tid;
      if (block % 2 == 0) {
        EXPECT_EQ(seen[block * 64 + tid], 500 + (block + 1) * 64 + 63 - tid);
      }
    }
}

TEST(BlockEmulator, ClusterArrivalOnTheWrongBlockIsADeadlock) {
  std::vector<int> seen(4 * 64, -1), index(4 * 64, -1);
  reset_report();
  remote_hand_over(false, seen, index);
  EXPECT_GT(report()[Fault::deadlock], 0) << report().summary();
}

TEST(BlockEmulator, TrapEndsTheThreadAndIsReported) {
  std::vector<int> after(32, 0);
  reset_report();
  run_block(
      [&] {
        if (threadIdx.x == 3) __trap();
        after[threadIdx.x] = 1;
      },
      threads(32));
  EXPECT_EQ(report()[Fault::trap], 1) << report().summary();
  EXPECT_EQ(after[3], 0);
  EXPECT_EQ(after[4], 1);
}

// ---- concurrent launches: blocks that wait for each other ------------------------------------
// Each block draws a ticket t, writes value[t] and raises ready[t]; block t then reads
// value[t - 1], after waiting for ready[t - 1] when `wait`: the hand-over of layer_norm.cu's
// per-sample kernels, and the mistake of leaving its wait out.
struct Chain {
  explicit Chain(int blocks) : ready(blocks), value(blocks), seen(blocks) {}
  std::vector<unsigned> ready, value, seen;
  unsigned next_ticket = 0;
};

void run_chain(Chain& c, bool wait, unsigned seed) {
  set_launch_schedule(Schedule::concurrent, seed);
  launch(
      [&] {
        __shared__ unsigned ticket;
        if (threadIdx.x == 0) ticket = atomicAdd(&c.next_ticket, 1u);
        __syncthreads();
        const unsigned t = ticket;
        if (threadIdx.x != 0) return;
        c.value[t] = 100 + t;
        __threadfence();
        atomicExch(&c.ready[t], 1u);
        if (t == 0) return;
        if (wait)
          while (*static_cast<volatile unsigned*>(&c.ready[t - 1]) == 0)
            __nanosleep(100);
        c.seen[t] = c.value[t - 1];
      },
      Dim3(12), Dim3(64), 0);
  set_launch_schedule(Schedule::in_order);
}

TEST(BlockEmulator, ConcurrentBlocksThatWaitForEachOtherHandOver) {
  for (unsigned seed = 1; seed <= 5; ++seed) {
    Chain c(12);
    reset_report();
    run_chain(c, true, seed);
    EXPECT_EQ(report().total_faults(), 0) << report().summary();
    for (unsigned t = 1; t < 12; ++t)
      EXPECT_EQ(c.seen[t], 99 + t) << "seed " << seed << ", block of ticket " << t;
  }
}

TEST(BlockEmulator, ConcurrentLaunchShowsAMissingWait) {
  int stale = 0;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    Chain c(12);
    run_chain(c, false, seed);
    for (unsigned t = 1; t < 12; ++t)
      stale += c.seen[t] != 99 + t;
  }
  EXPECT_GT(stale, 0) << "a block read its predecessor's value before it was written";
}

TEST(BlockEmulator, ConcurrentBlocksWaitingOnEachOtherAreADeadlock) {
  // Block t waits for ready[t + 1]: the first 4 blocks fill every slot, and the fourth waits for
  // a fifth that cannot start.
  std::vector<unsigned> ready(6);
  reset_report();
  set_launch_schedule(Schedule::concurrent, 3);
  launch(
      [&] {
        if (threadIdx.x != 0) return;
        const unsigned t = blockIdx.x;
        if (t + 1 < ready.size())
          while (*static_cast<volatile unsigned*>(&ready[t + 1]) == 0)
            __nanosleep(100);
        atomicExch(&ready[t], 1u);
      },
      Dim3(6), Dim3(32), 0);
  set_launch_schedule(Schedule::in_order);
  EXPECT_GT(report()[Fault::deadlock], 0) << report().summary();
}

}  // namespace
}  // namespace cu3d::emu
