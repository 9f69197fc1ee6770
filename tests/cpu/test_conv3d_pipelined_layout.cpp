// The shared-memory layout of the pipelined conv3d forward (kernels/cuda/conv3d_pipelined_layout.h)
// checked on the CPU: the copy assignment covers each tile chunk once, the swizzle is a
// bijection onto 16-byte slots, and playing the PTX semantics of cp.async and ldmatrix.x4 on
// the layout puts in every lane exactly the words the mma fragments need (PTX ISA, "Matrix
// fragments for mma.m16n8k16 / m16n8k8"), with no shared-memory bank conflict in any phase.
// The kernel's index math can thus be wrong only where this does not reach: the gathers.
#include <array>
#include <cstdint>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cuda/conv3d_pipelined_layout.h"

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

// Every warp (4 x 2 of 32 x 32), every k-step: the A registers hold (g, k lo), (g + 8, k lo),
// (g, k hi), (g + 8, k hi) of each 16-row block, the B registers (k lo, n g), (k hi, n g) of
// each 8-column tile, k lo and k hi being words t and 4 + t of the step's 8 (g = lane / 4,
// t = lane % 4): the fragments of mma.m16n8k16 bf16 (word = 2 values) and m16n8k8 tf32.
TEST(ConvPipelinedLayout, LdmatrixDeliversTheMmaFragments) {
  const auto a = copied_tile(kBM, kCopiesA);
  const auto b = copied_tile(kBN, kCopiesB);
  std::set<int> words_used;
  for (int warp = 0; warp < kThreads / 32; ++warp) {
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
    for (int step = 0; step < kSteps; ++step) {
      const int lo = 8 * step, hi = 8 * step + 4;
      for (int i = 0; i < 2; ++i) {
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
          words_used.insert(lo + t);
          words_used.insert(hi + t);
        }
      }
      for (int j = 0; j < 4; j += 2) {
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
        }
      }
    }
  }
  // The steps of a stage consume every word of r exactly once between them.
  EXPECT_EQ(int(words_used.size()), kWordsPerRow);
}

}  // namespace
}  // namespace cu3d::cuda::pipelined
