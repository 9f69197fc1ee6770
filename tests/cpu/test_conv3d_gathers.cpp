// The CUDA conv kernels' index arithmetic, checked on the CPU with the very functions the kernels
// call (kernels/cuda/conv3d_geometry.h, conv3d_pipelined_layout.h,
// conv3d_bwd_filter_pipelined_layout.h): the fast division, the split-K plan, and the gathers of
// version 3 (the forward, backward-data as the forward of the mirrored shape, and bwd-filter).
// For the gathers, every copy of every thread of every block of the grid is fetched into the
// logical stage tiles (A[row][r] and B[n][r] for the forward, A[r][m] and B[r][n] for
// bwd-filter); each block's tiles are multiplied out over its stages (and splits); the result must
// be the CPU conv's. Where each chunk then lands in shared memory and which lane's fragment reads
// it is test_conv3d_pipelined_layout.cpp's part; what neither reaches is the PTX instructions
// themselves (the GPU suite's).
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/conv3d.h"
#include "kernels/cuda/conv3d_bwd_filter_pipelined_layout.h"
#include "kernels/cuda/conv3d_geometry.h"
#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/cuda/conv3d_wide_layout.h"

namespace cu3d::cuda {
namespace {

TEST(ConvGathers, FastDivIsExactBelow2To31) {
  std::mt19937 rng(3);
  const uint32_t top = (uint32_t(1) << 31) - 1;
  for (uint32_t d : {1u, 2u, 3u, 7u, 27u, 56u, 64u, 112u, 171u, 1000u, 65537u, top}) {
    const igemm::FastDiv div(d);
    std::vector<uint32_t> xs = {0, 1, d - 1, d, d + 1, top - 1, top};
    for (int i = 0; i < 2000; ++i)
      xs.push_back(rng() & top);
    for (uint32_t x : xs) {
      uint32_t rem;
      ASSERT_EQ(div.divmod(x, &rem), x / d) << x << " / " << d;
      ASSERT_EQ(rem, x % d) << x << " % " << d;
    }
  }
}

// Every split has r-tiles, together they cover all, and the split count stays within both
// limits: the grid's (about 4 blocks per SM) and 8 r-tiles per split.
TEST(ConvGathers, SplitKCoversEveryTileWithNoEmptySplit) {
  for (int sms : {1, 114, 132})
    for (int64_t blocks_mn : {1, 2, 27, 54, 108, 10000})
      for (int64_t tiles = 0; tiles < 3000; tiles += tiles < 40 ? 1 : 37) {
        const igemm::SplitPlan plan = igemm::split_k(tiles, blocks_mn, sms);
        const int64_t need = std::max<int64_t>(tiles, 1);
        ASSERT_GE(plan.splits, 1);
        EXPECT_GE(int64_t(plan.splits) * plan.tiles_per_split, need);
        EXPECT_LT(int64_t(plan.splits - 1) * plan.tiles_per_split, need) << "an empty split";
        EXPECT_LE(plan.splits, std::max<int64_t>(1, (need + 7) / 8));
        EXPECT_LE(plan.splits, std::max<int64_t>(1, (4 * sms + blocks_mn - 1) / blocks_mn));
      }
}

}  // namespace

namespace pipelined {
namespace {

std::vector<double> random_values(int64_t count, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(count);
  for (double& e : v)
    e = u(rng);
  return v;
}

double relative_error(const std::vector<double>& got, const std::vector<double>& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (got[i] - ref[i]) * (got[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return std::sqrt(diff / norm);
}

// y (no bias) as version 3 or 4 (kTile) of the forward gathers it, with kPerChunk values per
// 16-byte chunk (8 in bf16, 4 in tf32) and the plain row order (row m is output position m): the
// block's row corners by row_corner, each r-tile's tap by tile_tap, its chunks by a_chunk and
// b_chunk. The tiles start as NaN, so an element that no copy writes poisons the result. The block
// tile of version 3 (128 x 64) or 4 (256 x 128).
struct Tile {
  int bm, bn, copies_a, copies_b;
};
constexpr Tile kVersion3{kBM, kBN, kCopiesA, kCopiesB};
constexpr Tile kVersion4{wide::kBM, wide::kBN, wide::kCopiesA, wide::kCopiesB};

template <int kPerChunk, Tile kTile>
std::vector<double> fwd_as_gathered(const Conv3dShape& s, const std::vector<double>& x,
                                    const std::vector<double>& w) {
  constexpr int kBM = kTile.bm, kBN = kTile.bn, kCopiesA = kTile.copies_a,
                kCopiesB = kTile.copies_b;
  const igemm::Geometry g = igemm::make_geometry(s, "fwd_as_gathered");
  const int M = s.n * s.out.d * s.out.h * s.out.w, N = s.k, R = g.taps * s.c;
  constexpr int kPerRow = kChunks * kPerChunk;
  EXPECT_EQ(s.c % kPerRow, 0) << "a shape version 3 takes";
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> y(int64_t(M) * N, nan), a, b, acc;
  std::vector<RowCorner> corners(kBM);
  for (int m_tile = 0; m_tile < (M + kBM - 1) / kBM; ++m_tile)
    for (int n_tile = 0; n_tile < (N + kBN - 1) / kBN; ++n_tile) {
      const int m0 = m_tile * kBM, n0 = n_tile * kBN;
      for (int row = 0; row < kBM; ++row)
        corners[row] = row_corner(
            g, igemm::split_pixel(uint32_t(m0 + row), g.div_od, g.div_oh, g.div_ow), m0 + row < M);
      acc.assign(kBM * kBN, 0.0);
      for (int kt = 0; kt < R / kPerRow; ++kt) {
        const int r0 = kt * kPerRow;
        const TileTap t = tile_tap(g, r0);
        a.assign(kBM * kPerRow, nan);
        b.assign(kBN * kPerRow, nan);
        for (int tid = 0; tid < kThreads; ++tid) {
          const int col = copy_chunk(tid) * kPerChunk;
          for (int j = 0; j < kCopiesA; ++j) {
            const int row = copy_row(tid, j);
            const int at = a_chunk(g, corners[row], t.tap, t.channel + col);
            EXPECT_LE(int64_t(at) + kPerChunk, int64_t(x.size()));
            for (int e = 0; e < kPerChunk; ++e)
              a[row * kPerRow + col + e] = at < 0 ? 0.0 : x[at + e];
          }
          for (int j = 0; j < kCopiesB; ++j) {
            const int row = copy_row(tid, j);
            const int64_t at = b_chunk(n0 + row, N, R, r0 + col);
            EXPECT_LE(at + kPerChunk, int64_t(w.size()));
            for (int e = 0; e < kPerChunk; ++e)
              b[row * kPerRow + col + e] = at < 0 ? 0.0 : w[at + e];
          }
        }
        for (int m = 0; m < kBM; ++m)
          for (int n = 0; n < kBN; ++n)
            for (int r = 0; r < kPerRow; ++r)
              acc[m * kBN + n] += a[m * kPerRow + r] * b[n * kPerRow + r];
      }
      for (int m = 0; m < kBM; ++m)
        for (int n = 0; n < kBN; ++n)
          if (m0 + m < M && n0 + n < N) y[int64_t(m0 + m) * N + n0 + n] = acc[m * kBN + n];
    }
  return y;
}

// The forward, and backward-data as the forward of the mirrored shape with the flipped,
// transposed filters (as conv3d_bwd_data runs versions 3 and 4), in both chunk widths and both
// block tiles.
TEST(ConvGathers, ForwardVersions3And4FetchWhatTheConvNeeds) {
  std::mt19937_64 rng(13);
  // 180 rows (a partial second M tile), 70 filters (a partial N tile), stride 2, padding.
  const Conv3dShape strided = Conv3dShape::make(2, {5, 11, 10}, 64, 70, {3, 3, 3}, {2, 2, 2},
                                                Padding::explicit_, {1, 1, 1});
  const auto x = random_values(strided.input_size(), rng),
             w = random_values(strided.filter_size(), rng);
  std::vector<double> ref(strided.output_size());
  cpu::conv3d_fwd<double>(strided, x.data(), w.data(), nullptr, ref.data());
  EXPECT_LT(relative_error(fwd_as_gathered<8, kVersion3>(strided, x, w), ref), 1e-12) << "bf16";
  EXPECT_LT(relative_error(fwd_as_gathered<4, kVersion3>(strided, x, w), ref), 1e-12) << "tf32";
  EXPECT_LT(relative_error(fwd_as_gathered<8, kVersion4>(strided, x, w), ref), 1e-12)
      << "bf16, version 4";
  EXPECT_LT(relative_error(fwd_as_gathered<4, kVersion4>(strided, x, w), ref), 1e-12)
      << "tf32, version 4";

  // Backward-data of an even kernel with "same" padding (asymmetric, mirrored) into 40 channels.
  const Conv3dShape s =
      Conv3dShape::make(1, {4, 6, 9}, 40, 64, {2, 2, 4}, {1, 1, 1}, Padding::same);
  const Conv3dShape mirrored = bwd_data_as_forward(s);
  ASSERT_EQ(mirrored.c, 64);
  const auto dy = random_values(s.output_size(), rng), wf = random_values(s.filter_size(), rng);
  std::vector<double> wt(s.filter_size()), dx(s.input_size());
  cpu::conv3d_flip_transpose_filters<double>(s, wf.data(), wt.data());
  cpu::conv3d_bwd_data<double>(s, dy.data(), wf.data(), dx.data());
  EXPECT_LT(relative_error(fwd_as_gathered<8, kVersion3>(mirrored, dy, wt), dx), 1e-12) << "bf16";
  EXPECT_LT(relative_error(fwd_as_gathered<4, kVersion3>(mirrored, dy, wt), dx), 1e-12) << "tf32";
  EXPECT_LT(relative_error(fwd_as_gathered<8, kVersion4>(mirrored, dy, wt), dx), 1e-12)
      << "bf16, version 4";
  EXPECT_LT(relative_error(fwd_as_gathered<4, kVersion4>(mirrored, dy, wt), dx), 1e-12)
      << "tf32, version 4";
}

}  // namespace
}  // namespace pipelined

namespace pipelined::filter {
namespace {

// dw as version 3 of bwd-filter gathers it in precision P, for `stages_per_split` stages per
// split. The tiles start as NaN, so an element that no copy writes poisons the result.
template <Precision P>
std::vector<double> bwd_filter_as_gathered(const Conv3dShape& s, const std::vector<double>& x,
                                           const std::vector<double>& dy, int stages_per_split) {
  using L = Layout<P>;
  constexpr int kPerChunk = L::kValuesPerChunk;
  const igemm::Geometry g = igemm::make_geometry(s, "bwd_filter_as_gathered");
  const int M = s.k, N = g.taps * s.c, R = s.n * s.out.d * s.out.h * s.out.w;
  const int stages = (R + L::kStageR - 1) / L::kStageR;
  const int splits = (stages + stages_per_split - 1) / stages_per_split;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> dw(int64_t(M) * N, 0.0), a, b, partial;
  for (int split = 0; split < splits; ++split)
    for (int m_tile = 0; m_tile < (M + kBM - 1) / kBM; ++m_tile)
      for (int n_tile = 0; n_tile < N / kBN; ++n_tile) {
        const FilterBlock block = filter_block<P>(g, R, n_tile, m_tile, split, stages_per_split);
        EXPECT_EQ(block.first, split * stages_per_split);
        EXPECT_GE(block.count, 1) << "split " << split << " has no stage";
        partial.assign(kBM * kBN, 0.0);
        for (int st = 0; st < block.count; ++st) {
          const int r0 = (block.first + st) * L::kStageR;
          a.assign(L::kStageR * kBM, nan);
          b.assign(L::kStageR * kBN, nan);
          for (int tid = 0; tid < kThreads; ++tid) {
            for (int j = 0; j < L::kCopiesA; ++j) {
              const int row = L::copy_row_a(tid, j), col = L::copy_chunk_a(tid) * kPerChunk;
              const int64_t at = dy_chunk(r0 + row, block.m0 + col, R, M);
              EXPECT_LE(at + kPerChunk, int64_t(dy.size()));
              for (int e = 0; e < kPerChunk; ++e)
                a[row * kBM + col + e] = at < 0 ? 0.0 : dy[at + e];
            }
            for (int j = 0; j < L::kCopiesB; ++j) {
              const int row = L::copy_row_b(tid, j), col = L::copy_chunk_b(tid) * kPerChunk;
              const int64_t at = x_chunk(g, block.tap, r0 + row, R, block.c0 + col);
              EXPECT_LE(at + kPerChunk, int64_t(x.size()));
              for (int e = 0; e < kPerChunk; ++e)
                b[row * kBN + col + e] = at < 0 ? 0.0 : x[at + e];
            }
          }
          for (int r = 0; r < L::kStageR; ++r)
            for (int m = 0; m < kBM; ++m)
              for (int n = 0; n < kBN; ++n)
                partial[m * kBN + n] += a[r * kBM + m] * b[r * kBN + n];
        }
        // The epilogue's stores: rows past M and columns past N are dropped.
        for (int m = 0; m < kBM; ++m)
          for (int n = 0; n < kBN; ++n)
            if (block.m0 + m < M && n_tile * kBN + n < N)
              dw[int64_t(block.m0 + m) * N + n_tile * kBN + n] += partial[m * kBN + n];
      }
  return dw;
}

struct GatherCase {
  const char* name;
  Conv3dShape shape;
  int stages_per_split;
};

// In bf16 (stages of 64 r, as the comments count them) and tf32 (stages of 32).
TEST(ConvGathers, BwdFilterVersion3FetchesWhatTheConvNeeds) {
  const GatherCase cases[] = {
      // Two 64-channel column tiles per tap, 136 filters (a second M tile of 8), a stride in h,
      // 126 positions (a last stage of 62), one stage per split.
      {"c128_k136_stride1x2x1",
       Conv3dShape::make(2, {3, 6, 7}, 128, 136, {3, 3, 3}, {1, 2, 1}, Padding::explicit_,
                         {1, 1, 1}),
       1},
      // An uneven kernel with strides 2 and 3 and padding in h only; 8 filters; 81 positions.
      {"c64_k8_kernel1x3x2_stride2x1x3",
       Conv3dShape::make(1, {5, 9, 9}, 64, 8, {1, 3, 2}, {2, 1, 3}, Padding::explicit_, {0, 1, 0}),
       2},
      // conv2a-like: 256 positions in 4 stages, splits of 3 and 1.
      {"c64_k64_same", Conv3dShape::make(1, {4, 8, 8}, 64, 64, {3, 3, 3}, {1, 1, 1}, Padding::same),
       3},
  };
  for (const GatherCase& c : cases) {
    const Conv3dShape& s = c.shape;
    ASSERT_TRUE(s.c % 64 == 0 && s.k % 8 == 0) << c.name << ": a shape version 3 takes";
    std::mt19937_64 rng(11);
    const auto x = random_values(s.input_size(), rng), dy = random_values(s.output_size(), rng);
    std::vector<double> ref(s.filter_size()), bias(s.k);
    cpu::conv3d_bwd_filter<double>(s, x.data(), dy.data(), ref.data(), bias.data());
    EXPECT_LT(
        relative_error(bwd_filter_as_gathered<Precision::bf16>(s, x, dy, c.stages_per_split), ref),
        1e-12)
        << c.name << ", bf16";
    EXPECT_LT(
        relative_error(bwd_filter_as_gathered<Precision::tf32>(s, x, dy, c.stages_per_split), ref),
        1e-12)
        << c.name << ", tf32";
  }
}

}  // namespace
}  // namespace pipelined::filter
}  // namespace cu3d::cuda
