// The shared-memory layout of the pipelined conv3d forward (kernels/cuda/conv3d_pipelined_layout.h)
// checked on the CPU: the copy assignment covers each tile chunk once, the swizzle is a
// bijection onto 16-byte slots, and playing the PTX semantics of cp.async and ldmatrix.x4 on
// the layout puts in every lane exactly the words the mma fragments need (PTX ISA, "Matrix
// fragments for mma.m16n8k16 / m16n8k8"), with no shared-memory bank conflict in any phase.
// The same for version 4's wider tiles, for version 3's fp32 form (16-byte loads for FFMA), and
// for the backward-filter's [r][column] tiles read by ldmatrix.trans (bf16) or by each lane's own
// 32-bit loads (tf32). The gathers, which decide what each chunk holds, are
// test_conv3d_gathers.cpp's.
#include <array>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cuda/conv3d_bwd_filter_pipelined_layout.h"
#include "kernels/cuda/conv3d_pipelined_ffma_layout.h"
#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/cuda/conv3d_wide_layout.h"

namespace cu3d::cuda::pipelined {
namespace {

constexpr int kWordsPerRow = kRowBytes / 4;  // 32-bit words of r per tile row

// Distinct word values: 1 + (row, word) of the logical tile.
uint32_t word_of(int row, int word) {
  return uint32_t(1 + row * kWordsPerRow + word);
}

// A tile as the kernel's copies leave it in shared memory: every thread's chunks, each one
// 16 bytes (4 words) of a logical row, written at the swizzled offset.
std::vector<uint32_t> copied_tile(int rows, int copies_per_thread) {
  std::vector<uint32_t> shared(rows * kRowBytes / 4, 0);
  for (int tid = 0; tid < kThreads; ++tid)
    for (int j = 0; j < copies_per_thread; ++j) {
      const int row = copy_row(tid, j), chunk = copy_chunk(tid);
      for (int e = 0; e < 4; ++e)
        shared[swizzled(row, chunk) / 4 + e] = word_of(row, 4 * chunk + e);
    }
  return shared;
}

// ldmatrix.x4: lanes 8q..8q+7 address the rows of matrix q; lane l receives word l % 4 of
// row l / 4 of matrix q in register q.
using Fragments = std::array<std::array<uint32_t, 4>, 32>;
Fragments ldmatrix_x4(const std::vector<uint32_t>& shared, const std::array<int, 32>& address) {
  Fragments out{};
  for (int lane = 0; lane < 32; ++lane)
    for (int q = 0; q < 4; ++q)
      out[lane][q] = shared[address[8 * q + lane / 4] / 4 + lane % 4];
  return out;
}

// Each group of 8 lanes is one shared-memory phase (8 x 16 bytes): conflict-free when the
// 16-byte slots fall in 8 distinct 4-bank groups.
void expect_conflict_free(const std::array<int, 32>& address, const char* what) {
  for (int q = 0; q < 4; ++q) {
    std::set<int> groups;
    for (int l = 0; l < 8; ++l)
      groups.insert(address[8 * q + l] / 16 % 8);
    EXPECT_EQ(groups.size(), 8u) << what << ", matrix " << q;
  }
}

TEST(ConvPipelinedLayout, CopiesCoverEachChunkOnceAndTheSwizzleIsABijection) {
  for (auto [rows, copies] : {std::pair{kBM, kCopiesA}, std::pair{kBN, kCopiesB}}) {
    std::set<std::pair<int, int>> chunks;
    std::set<int> offsets;
    for (int tid = 0; tid < kThreads; ++tid)
      for (int j = 0; j < copies; ++j) {
        const int row = copy_row(tid, j), chunk = copy_chunk(tid);
        ASSERT_LT(row, rows);
        EXPECT_TRUE(chunks.insert({row, chunk}).second) << "chunk copied twice";
        const int offset = swizzled(row, chunk);
        EXPECT_EQ(offset % kChunkBytes, 0);
        EXPECT_GE(offset, 0);
        EXPECT_LT(offset, rows * kRowBytes);
        offsets.insert(offset);
      }
    EXPECT_EQ(int(chunks.size()), rows * kChunks);
    EXPECT_EQ(int(offsets.size()), rows * kChunks);
  }
  EXPECT_EQ(kStageBytes, kTileABytes + kBN * kRowBytes);
}

TEST(ConvPipelinedLayout, CopyPhasesAreConflictFree) {
  // cp.async's shared stores, 8 threads (128 bytes) per phase.
  for (int tid0 = 0; tid0 < kThreads; tid0 += 8)
    for (int j = 0; j < kCopiesA; ++j) {
      std::set<int> groups;
      for (int tid = tid0; tid < tid0 + 8; ++tid)
        groups.insert(swizzled(copy_row(tid, j), copy_chunk(tid)) / 16 % 8);
      EXPECT_EQ(groups.size(), 8u) << "threads " << tid0 << "..+8, copy " << j;
    }
}

// A block tile of version 3 or 4: its A and B rows, the copies per thread, and each warp's piece.
struct BlockTile {
  const char* name;
  int rows_a, rows_b, copies_a, copies_b, warp_m, warp_n;
  int (*row0)(int warp);
  int (*col0)(int warp);
};

// Every warp, every k-step: the A registers hold (g, k lo), (g + 8, k lo), (g, k hi),
// (g + 8, k hi) of each 16-row block of the warp's piece, the B registers (k lo, n g), (k hi, n g)
// of each 8-column tile, k lo and k hi being words t and 4 + t of the step's 8 (g = lane / 4,
// t = lane % 4): the fragments of mma.m16n8k16 bf16 (word = 2 values) and m16n8k8 tf32. Between
// them the warps read every word of both tiles.
void expect_fragments(const BlockTile& tile) {
  SCOPED_TRACE(tile.name);
  const auto a = copied_tile(tile.rows_a, tile.copies_a);
  const auto b = copied_tile(tile.rows_b, tile.copies_b);
  std::set<std::pair<int, int>> a_read, b_read;
  for (int warp = 0; warp < kThreads / 32; ++warp) {
    const int wm = tile.row0(warp), wn = tile.col0(warp);
    for (int step = 0; step < kSteps; ++step) {
      const int lo = 8 * step, hi = 8 * step + 4;
      for (int i = 0; i < tile.warp_m / 16; ++i) {
        const int row0 = wm + 16 * i;
        std::array<int, 32> address;
        for (int lane = 0; lane < 32; ++lane)
          address[lane] = swizzled(a_fragment_row(lane, row0), a_fragment_chunk(lane, step));
        expect_conflict_free(address, "A ldmatrix");
        const Fragments f = ldmatrix_x4(a, address);
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane / 4, t = lane % 4;
          ASSERT_EQ(f[lane][0], word_of(row0 + g, lo + t)) << "warp " << warp << " lane " << lane;
          ASSERT_EQ(f[lane][1], word_of(row0 + g + 8, lo + t));
          ASSERT_EQ(f[lane][2], word_of(row0 + g, hi + t));
          ASSERT_EQ(f[lane][3], word_of(row0 + g + 8, hi + t));
          for (int row : {row0 + g, row0 + g + 8})
            for (int word : {lo + t, hi + t})
              a_read.insert({row, word});
        }
      }
      for (int j = 0; j < tile.warp_n / 8; j += 2) {
        const int col0 = wn + 8 * j;
        std::array<int, 32> address;
        for (int lane = 0; lane < 32; ++lane)
          address[lane] = swizzled(b_fragment_row(lane, col0), b_fragment_chunk(lane, step));
        expect_conflict_free(address, "B ldmatrix");
        const Fragments f = ldmatrix_x4(b, address);
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane / 4, t = lane % 4;
          ASSERT_EQ(f[lane][0], word_of(col0 + g, lo + t)) << "warp " << warp << " lane " << lane;
          ASSERT_EQ(f[lane][1], word_of(col0 + g, hi + t));
          ASSERT_EQ(f[lane][2], word_of(col0 + 8 + g, lo + t));
          ASSERT_EQ(f[lane][3], word_of(col0 + 8 + g, hi + t));
          for (int col : {col0 + g, col0 + 8 + g})
            for (int word : {lo + t, hi + t})
              b_read.insert({col, word});
        }
      }
    }
  }
  EXPECT_EQ(int(a_read.size()), tile.rows_a * kWordsPerRow);
  EXPECT_EQ(int(b_read.size()), tile.rows_b * kWordsPerRow);
}

TEST(ConvPipelinedLayout, LdmatrixDeliversTheMmaFragments) {
  expect_fragments({"version 3: 128 x 64, warps of 32 x 32", kBM, kBN, kCopiesA, kCopiesB, 32, 32,
                    [](int warp) { return (warp % 4) * 32; },
                    [](int warp) { return (warp / 4) * 32; }});
  expect_fragments({"version 4: 256 x 128, warps of 64 x 64", wide::kBM, wide::kBN, wide::kCopiesA,
                    wide::kCopiesB, wide::kWarpM, wide::kWarpN, wide::warp_row0, wide::warp_col0});
}

TEST(ConvPipelinedLayout, WideCopiesCoverEachChunkOnce) {
  for (auto [rows, copies] :
       {std::pair{wide::kBM, wide::kCopiesA}, std::pair{wide::kBN, wide::kCopiesB}}) {
    std::set<std::pair<int, int>> chunks;
    for (int tid = 0; tid < kThreads; ++tid)
      for (int j = 0; j < copies; ++j) {
        ASSERT_LT(copy_row(tid, j), rows);
        EXPECT_TRUE(chunks.insert({copy_row(tid, j), copy_chunk(tid)}).second);
      }
    EXPECT_EQ(int(chunks.size()), rows * kChunks);
  }
  EXPECT_EQ(wide::kStageBytes, wide::kTileABytes + wide::kBN * kRowBytes);
}

// A warp-wide 16-byte load in one shared-memory wavefront: lanes that share an address get it by
// broadcast, and the distinct addresses lie in distinct 16-byte bank groups (8 of them, 128 bytes).
void expect_one_wavefront(const std::array<int, 32>& address, const char* what) {
  const std::set<int> distinct(address.begin(), address.end());
  std::set<int> groups;
  for (int offset : distinct)
    groups.insert(offset / 16 % 8);
  EXPECT_EQ(groups.size(), distinct.size()) << what << ": two chunks share banks";
}

// Version 3's fp32 form (conv3d_pipelined_ffma_layout.h): the threads' 8 x 8 outputs cover the
// 128 x 128 tile once; every warp's 16-byte loads of a chunk of r (one per row i of its threads,
// one per column j) take one wavefront each and give each lane the 4 values of r of its row or
// column; between them they read both tiles whole; and the windows of 4 and 8 consecutive rows
// that the epilogue pools lie on the lanes its shuffles join (lane ^ 8, lane ^ 16) and, for 8,
// on rows i and i + 1 of one thread.
TEST(ConvPipelinedLayout, FfmaLoadsDeliverEachThreadsRowsAndColumns) {
  std::set<std::pair<int, int>> owned;
  for (int tid = 0; tid < kThreads; ++tid)
    for (int i = 0; i < ffma::kRowsPerThread; ++i)
      for (int j = 0; j < ffma::kColsPerThread; ++j) {
        ASSERT_LT(ffma::thread_row(tid, i), ffma::kBM);
        ASSERT_LT(ffma::thread_col(tid, j), ffma::kBN);
        EXPECT_TRUE(owned.insert({ffma::thread_row(tid, i), ffma::thread_col(tid, j)}).second)
            << "thread " << tid << " (" << i << ", " << j << ") owned twice";
      }
  EXPECT_EQ(int(owned.size()), ffma::kBM * ffma::kBN);

  const auto a = copied_tile(ffma::kBM, ffma::kCopiesA), b = copied_tile(ffma::kBN, ffma::kCopiesB);
  std::set<std::pair<int, int>> a_read, b_read;
  // One warp-wide load: lane l's chunk `chunk` of row row_of(tid) of a tile.
  auto warp_load = [](const std::vector<uint32_t>& tile, int warp, int chunk, auto row_of,
                      std::set<std::pair<int, int>>& read, const char* what) {
    std::array<int, 32> address;
    for (int lane = 0; lane < 32; ++lane)
      address[lane] = swizzled(row_of(32 * warp + lane), chunk);
    expect_one_wavefront(address, what);
    for (int lane = 0; lane < 32; ++lane)
      for (int e = 0; e < ffma::kPerChunk; ++e) {
        const int row = row_of(32 * warp + lane), word = ffma::kPerChunk * chunk + e;
        ASSERT_EQ(tile[address[lane] / 4 + e], word_of(row, word))
            << what << ", warp " << warp << " lane " << lane;
        read.insert({row, word});
      }
  };
  for (int warp = 0; warp < kThreads / 32; ++warp)
    for (int chunk = 0; chunk < kChunks; ++chunk)
      for (int k = 0; k < 8; ++k) {
        warp_load(
            a, warp, chunk, [&](int tid) { return ffma::thread_row(tid, k); }, a_read, "A");
        warp_load(
            b, warp, chunk, [&](int tid) { return ffma::thread_col(tid, k); }, b_read, "B");
      }
  EXPECT_EQ(int(a_read.size()), ffma::kBM * kWordsPerRow);
  EXPECT_EQ(int(b_read.size()), ffma::kBN * kWordsPerRow);

  for (int tid = 0; tid < kThreads; ++tid)
    for (int i = 0; i < ffma::kRowsPerThread; ++i) {
      const int warp0 = tid - tid % 32, lane = tid % 32;
      std::set<int> rows4, rows8;
      for (int other : {lane, lane ^ 8, lane ^ 16, lane ^ 24}) {
        rows4.insert(ffma::thread_row(warp0 + other, i));
        for (int pair : {i & ~1, i | 1})
          rows8.insert(ffma::thread_row(warp0 + other, pair));
      }
      const int first4 = ffma::thread_row(tid, i) / 4 * 4,
                first8 = ffma::thread_row(tid, i) / 8 * 8;
      EXPECT_EQ(rows4, (std::set<int>{first4, first4 + 1, first4 + 2, first4 + 3}));
      std::set<int> window8;
      for (int r = first8; r < first8 + 8; ++r)
        window8.insert(r);
      EXPECT_EQ(rows8, window8);
      // Lane row 0 emits each window's first row.
      if (lane < ffma::kLaneCols) {
        EXPECT_EQ(ffma::thread_row(tid, i), first4);
        EXPECT_EQ(ffma::thread_row(tid, i & ~1), first8);
      }
    }
}

}  // namespace

// ---- the backward-filter's layout (conv3d_bwd_filter_pipelined_layout.h) --------------------
namespace filter {
namespace {

using Bf16 = Layout<Precision::bf16>;
using Tf32 = Layout<Precision::tf32>;

// Tiles of [r][column]: element (r, column) holds a distinct value (16-bit in bf16, 32 in tf32).
uint32_t value_of(int r, int column) {
  return uint32_t(1 + r * kBM + column);
}
// The 32-bit word of two consecutive r of one column, the lower r in the low half (the order of
// a bf16 pair in an mma fragment register).
uint32_t pair_of(int r, int column) {
  return value_of(r, column) | value_of(r + 1, column) << 16;
}

// A tile of layout L as the kernel's copies leave it: each chunk is kValuesPerChunk values of one
// row of r, written at its swizzled offset; the result holds the tile's bytes.
template <class L, class Row, class Chunk>
std::vector<unsigned char> copied_tile(int row_bytes, int copies, Row copy_row, Chunk copy_chunk) {
  std::vector<unsigned char> shared(L::kStageR * row_bytes, 0);
  for (int tid = 0; tid < kThreads; ++tid)
    for (int j = 0; j < copies; ++j) {
      const int row = copy_row(tid, j), chunk = copy_chunk(tid);
      for (int e = 0; e < L::kValuesPerChunk; ++e) {
        const uint32_t v = value_of(row, L::kValuesPerChunk * chunk + e);
        std::memcpy(&shared[L::swizzled(row, chunk, row_bytes) + L::kValueBytes * e], &v,
                    L::kValueBytes);
      }
    }
  return shared;
}

uint32_t load(const std::vector<unsigned char>& shared, int offset, int bytes) {
  uint32_t v = 0;
  std::memcpy(&v, &shared[offset], bytes);
  return v;
}

// ldmatrix.x4.trans: lane l receives in register q the values at rows 2 (l % 4) and
// 2 (l % 4) + 1 (low half first) of column l / 4 of matrix q, whose 8 rows lanes 8q..8q+7
// address.
Fragments ldmatrix_x4_trans(const std::vector<unsigned char>& shared,
                            const std::array<int, 32>& address) {
  Fragments out{};
  for (int lane = 0; lane < 32; ++lane)
    for (int q = 0; q < 4; ++q) {
      const int column = lane / 4, row = 2 * (lane % 4);
      const uint32_t lo = load(shared, address[8 * q + row] + 2 * column, 2);
      const uint32_t hi = load(shared, address[8 * q + row + 1] + 2 * column, 2);
      out[lane][q] = lo | hi << 16;
    }
  return out;
}

// A warp's 32 loads of 4 bytes (ld.shared.u32) are one phase: conflict-free when they fall in 32
// distinct banks.
void expect_words_conflict_free(const std::array<int, 32>& address, const char* what) {
  std::set<int> banks;
  for (int offset : address)
    banks.insert(offset / 4 % 32);
  EXPECT_EQ(banks.size(), 32u) << what;
}

template <class L>
void expect_copies_cover_each_chunk_once_without_conflicts() {
  struct Tile {
    int row_bytes, copies;
    int (*row)(int, int);
    int (*chunk)(int);
  };
  for (const Tile tile : {Tile{L::kRowBytesA, L::kCopiesA, L::copy_row_a, L::copy_chunk_a},
                          Tile{L::kRowBytesB, L::kCopiesB, L::copy_row_b, L::copy_chunk_b}}) {
    const int chunks_per_row = tile.row_bytes / kChunkBytes;
    std::set<std::pair<int, int>> chunks;
    std::set<int> offsets;
    for (int tid = 0; tid < kThreads; ++tid)
      for (int j = 0; j < tile.copies; ++j) {
        const int row = tile.row(tid, j), chunk = tile.chunk(tid);
        ASSERT_LT(row, L::kStageR);
        ASSERT_LT(chunk, chunks_per_row);
        EXPECT_TRUE(chunks.insert({row, chunk}).second) << "chunk copied twice";
        offsets.insert(L::swizzled(row, chunk, tile.row_bytes));
      }
    EXPECT_EQ(int(chunks.size()), L::kStageR * chunks_per_row);
    EXPECT_EQ(int(offsets.size()), L::kStageR * chunks_per_row);
    EXPECT_LT(*offsets.rbegin(), L::kStageR * tile.row_bytes);
    // cp.async's shared stores: 8 threads (128 bytes) per phase.
    for (int tid0 = 0; tid0 < kThreads; tid0 += 8)
      for (int j = 0; j < tile.copies; ++j) {
        std::set<int> groups;
        for (int tid = tid0; tid < tid0 + 8; ++tid)
          groups.insert(L::swizzled(tile.row(tid, j), tile.chunk(tid), tile.row_bytes) / 16 % 8);
        EXPECT_EQ(groups.size(), 8u) << "threads " << tid0 << "..+8, copy " << j;
      }
  }
  EXPECT_EQ(L::kStageBytes, L::kStageR * (L::kRowBytesA + L::kRowBytesB));
  EXPECT_EQ(kStages * L::kStageBytes, kSharedBytes);
}

TEST(ConvPipelinedLayout, FilterCopiesCoverEachChunkOnceWithoutConflicts) {
  expect_copies_cover_each_chunk_once_without_conflicts<Bf16>();
  expect_copies_cover_each_chunk_once_without_conflicts<Tf32>();
}

// Every warp (4 x 2 of 32 x 32), every k-step: ldmatrix.trans of the [r][m] tile gives the A
// registers (m g, r lo), (m g + 8, r lo), (m g, r hi), (m g + 8, r hi) of each 16-filter block,
// and of the [r][n] tile the B registers (r lo, n g), (r hi, n g) of each 8-column tile, r lo
// being the pair 2t, 2t + 1 of the step's 16 and r hi 8 more (g = lane / 4, t = lane % 4): the
// fragments of mma.m16n8k16 with bf16 operands (PTX ISA, "Matrix fragments for mma.m16n8k16").
TEST(ConvPipelinedLayout, LdmatrixTransDeliversTheFilterGradientsFragments) {
  using L = Bf16;
  const auto a = copied_tile<L>(L::kRowBytesA, L::kCopiesA, L::copy_row_a, L::copy_chunk_a);
  const auto b = copied_tile<L>(L::kRowBytesB, L::kCopiesB, L::copy_row_b, L::copy_chunk_b);
  std::set<std::pair<int, int>> a_read, b_read;
  for (int warp = 0; warp < kThreads / 32; ++warp) {
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
    for (int step = 0; step < L::kStageR / L::kStepR; ++step) {
      const int lo = 16 * step, hi = lo + 8;
      for (int i = 0; i < 2; ++i) {
        const int m0 = wm + 16 * i;
        std::array<int, 32> address;
        for (int lane = 0; lane < 32; ++lane)
          address[lane] =
              L::swizzled(a_fragment_row(lane, step), a_fragment_chunk(lane, m0), L::kRowBytesA);
        expect_conflict_free(address, "A ldmatrix.trans");
        const Fragments f = ldmatrix_x4_trans(a, address);
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane / 4, t = lane % 4;
          ASSERT_EQ(f[lane][0], pair_of(lo + 2 * t, m0 + g)) << "warp " << warp << " lane " << lane;
          ASSERT_EQ(f[lane][1], pair_of(lo + 2 * t, m0 + g + 8));
          ASSERT_EQ(f[lane][2], pair_of(hi + 2 * t, m0 + g));
          ASSERT_EQ(f[lane][3], pair_of(hi + 2 * t, m0 + g + 8));
          for (int r : {lo + 2 * t, hi + 2 * t})
            for (int m : {m0 + g, m0 + g + 8}) {
              a_read.insert({r, m});
              a_read.insert({r + 1, m});
            }
        }
      }
      for (int j = 0; j < 4; j += 2) {
        const int n0 = wn + 8 * j;
        std::array<int, 32> address;
        for (int lane = 0; lane < 32; ++lane)
          address[lane] =
              L::swizzled(b_fragment_row(lane, step), b_fragment_chunk(lane, n0), L::kRowBytesB);
        expect_conflict_free(address, "B ldmatrix.trans");
        const Fragments f = ldmatrix_x4_trans(b, address);
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane / 4, t = lane % 4;
          ASSERT_EQ(f[lane][0], pair_of(lo + 2 * t, n0 + g)) << "warp " << warp << " lane " << lane;
          ASSERT_EQ(f[lane][1], pair_of(hi + 2 * t, n0 + g));
          ASSERT_EQ(f[lane][2], pair_of(lo + 2 * t, n0 + 8 + g));
          ASSERT_EQ(f[lane][3], pair_of(hi + 2 * t, n0 + 8 + g));
          for (int r : {lo + 2 * t, hi + 2 * t})
            for (int n : {n0 + g, n0 + 8 + g}) {
              b_read.insert({r, n});
              b_read.insert({r + 1, n});
            }
        }
      }
    }
  }
  // Between them the warps and steps read every element of both tiles.
  EXPECT_EQ(int(a_read.size()), L::kStageR * kBM);
  EXPECT_EQ(int(b_read.size()), L::kStageR * kBN);
}

// tf32: every warp, every k-step of 8 r, the 32-bit loads of stage_math (value_at) give each lane
// the A registers (m g, r t), (m g + 8, r t), (m g, r t + 4), (m g + 8, r t + 4) of each
// 16-filter block and the B registers (r t, n g), (r t + 4, n g) of each 8-column tile: the
// fragments of mma.m16n8k8 with tf32 operands (PTX ISA, "Matrix fragments for mma.m16n8k8"),
// every load of the warp conflict-free, every element of both tiles read.
TEST(ConvPipelinedLayout, SharedLoadsDeliverTheTf32FilterGradientsFragments) {
  using L = Tf32;
  const auto a = copied_tile<L>(L::kRowBytesA, L::kCopiesA, L::copy_row_a, L::copy_chunk_a);
  const auto b = copied_tile<L>(L::kRowBytesB, L::kCopiesB, L::copy_row_b, L::copy_chunk_b);
  std::set<std::pair<int, int>> a_read, b_read;
  // One warp-wide load: lane l's value at (r(l), column(l)) of a tile; checks the phase's banks
  // and that each lane got the value of that element.
  auto warp_load = [](const std::vector<unsigned char>& tile, int row_bytes, auto r, auto column,
                      std::set<std::pair<int, int>>& read, const char* what) {
    std::array<int, 32> address;
    for (int lane = 0; lane < 32; ++lane)
      address[lane] = L::value_at(r(lane), column(lane), row_bytes);
    expect_words_conflict_free(address, what);
    for (int lane = 0; lane < 32; ++lane) {
      ASSERT_EQ(load(tile, address[lane], 4), value_of(r(lane), column(lane)))
          << what << ", lane " << lane;
      read.insert({r(lane), column(lane)});
    }
  };
  for (int warp = 0; warp < kThreads / 32; ++warp) {
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
    for (int step = 0; step < L::kStageR / L::kStepR; ++step) {
      const int k0 = L::kStepR * step;
      for (int half : {0, 4}) {  // registers 0, 1 at r t; 2, 3 at r t + 4 (B: 0 and 1)
        auto r = [&](int lane) { return k0 + lane % 4 + half; };
        for (int i = 0; i < 2; ++i)
          for (int eight : {0, 8}) {
            auto m = [&](int lane) { return wm + 16 * i + lane / 4 + eight; };
            warp_load(a, L::kRowBytesA, r, m, a_read, "A");
          }
        for (int j = 0; j < 4; ++j) {
          auto n = [&](int lane) { return wn + 8 * j + lane / 4; };
          warp_load(b, L::kRowBytesB, r, n, b_read, "B");
        }
      }
    }
  }
  EXPECT_EQ(int(a_read.size()), L::kStageR * kBM);
  EXPECT_EQ(int(b_read.size()), L::kStageR * kBN);
}

}  // namespace
}  // namespace filter
}  // namespace cu3d::cuda::pipelined
