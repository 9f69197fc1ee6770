// Version 5 of the conv3d forward (kernels/cuda/conv3d_wgmma_layout.h) checked on the CPU, on both
// of its block tiles (256 and 128 rows): its matrix descriptors, decoded by the PTX ISA's bit
// fields and read the way wgmma reads a K-major operand with the 128-byte swizzle, address
// exactly the logical rows and k-steps of the stage tiles that the copies leave in shared memory;
// the accumulator layout covers the block tile once, each accumulator in the rows its
// instruction's A operand holds; and the shared memory asked for leaves room to align the ring to
// the swizzle's period.
//
// The wgmma model (PTX ISA, "Matrix Descriptor Format" and "Shared Memory Matrix Layout"): a
// K-major operand is a stack of 8-row atoms, `stride` bytes apart, of 128-byte rows; byte b of
// row m sits at the linear address start + (m / 8) * stride + (m % 8) * 128 + b, whose 16-byte
// chunk bits [4:6] the 128-byte swizzle XORs with bits [7:9].
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cuda/conv3d_wgmma_layout.h"

namespace cu3d::cuda::pipelined::wgmma {
namespace {

struct Descriptor {
  uint32_t start, leading, stride;
  int base_offset, swizzle;
};

// The descriptor's fields, as the PTX ISA numbers its bits.
Descriptor decode(uint64_t d) {
  return {uint32_t(d & 0x3FFF) << 4, uint32_t(d >> 16 & 0x3FFF) << 4,
          uint32_t(d >> 32 & 0x3FFF) << 4, int(d >> 49 & 7), int(d >> 62 & 3)};
}

// The shared address wgmma reads for byte `byte` (< 32: one k-step) of row `row` of a K-major
// operand with the 128-byte swizzle.
uint32_t k_major_sw128(const Descriptor& d, int row, int byte) {
  const uint32_t linear = d.start + uint32_t(row / 8) * d.stride + uint32_t(row % 8) * 128 + byte;
  return linear ^ ((linear >> 7 & 7) << 4);
}

constexpr int kWordsPerRow = kRowBytes / 4;

// Distinct word values: 1 + (row, word) of the logical tile, + tile_id so A and B differ.
uint32_t word_of(int tile_id, int row, int word) {
  return uint32_t(1 + tile_id * (1 << 20) + row * kWordsPerRow + word);
}

// Shared memory as the copies leave one stage of `Tile`: tile A (kBM rows) at `base`, tile B
// (128 rows) after it; every thread's 16-byte chunks at their swizzled offsets.
template <class Tile>
std::vector<uint32_t> copied_stage(uint32_t base) {
  std::vector<uint32_t> shared((base + Tile::kStageBytes) / 4, 0);
  const struct {
    int id, copies;
    uint32_t tile;
  } tiles[] = {{0, Tile::kCopiesA, base}, {1, Tile::kCopiesB, base + Tile::kTileABytes}};
  for (const auto& t : tiles)
    for (int tid = 0; tid < kThreads; ++tid)
      for (int j = 0; j < t.copies; ++j) {
        const int row = copy_row(tid, j), chunk = copy_chunk(tid);
        for (int e = 0; e < 4; ++e)
          shared[(t.tile + swizzled(row, chunk)) / 4 + e] = word_of(t.id, row, 4 * chunk + e);
      }
  return shared;
}

// Every word one instruction's operand reads (rows from row0 of tile `id`, k-step `step`) is the
// logical word the GEMM wants there.
void expect_operand(const std::vector<uint32_t>& shared, uint64_t descriptor, int id, int row0,
                    int rows, int step) {
  const Descriptor d = decode(descriptor);
  ASSERT_EQ(d.swizzle, 1) << "128-byte swizzle";
  ASSERT_EQ(d.stride, uint32_t(kAtomBytes));
  ASSERT_EQ(d.base_offset, 0);
  for (int m = 0; m < rows; ++m)
    for (int byte = 0; byte < kStepBytes; byte += 4) {
      const uint32_t address = k_major_sw128(d, m, byte);
      ASSERT_LT(address / 4, shared.size());
      ASSERT_EQ(shared[address / 4], word_of(id, row0 + m, step * kStepBytes / 4 + byte / 4))
          << "tile " << id << ", row " << row0 + m << ", step " << step << ", byte " << byte;
    }
}

template <class Tile>
void expect_descriptors_read_the_stage() {
  // The ring's base as the kernel aligns it; a second stage slot as well.
  for (uint32_t base : {uint32_t(kAtomBytes), uint32_t(kAtomBytes + Tile::kStageBytes)}) {
    const std::vector<uint32_t> shared = copied_stage<Tile>(base);
    const uint32_t a_tile = base, b_tile = base + Tile::kTileABytes;
    for (int s = 0; s < kStepsPerStage; ++s) {
      expect_operand(shared, smem_descriptor(operand_address(b_tile, 0, s)), 1, 0, kInstrN, s);
      for (int group = 0; group < kGroups; ++group)
        for (int blk = 0; blk < Tile::kBlocksPerGroup; ++blk) {
          const int row0 = Tile::group_row0(group) + blk * kInstrM;
          expect_operand(shared, smem_descriptor(operand_address(a_tile, row0, s)), 0, row0,
                         kInstrM, s);
        }
    }
  }
}

TEST(ConvWgmmaLayout, DescriptorsReadTheStageTilesAsTheGemmWantsThem) {
  expect_descriptors_read_the_stage<TallTile>();
  expect_descriptors_read_the_stage<ShortTile>();
}

TEST(ConvWgmmaLayout, AMisalignedRingWouldBeCaught) {
  // The check above is not vacuous: a ring 128 bytes off the swizzle's period reads wrong words.
  const uint32_t base = kAtomBytes + 128;
  const std::vector<uint32_t> shared = copied_stage<TallTile>(base);
  const Descriptor d = decode(smem_descriptor(operand_address(base, 0, 1)));
  int wrong = 0;
  for (int m = 0; m < kInstrM; ++m)
    wrong += shared[k_major_sw128(d, m, 0) / 4] != word_of(0, m, kStepBytes / 4);
  EXPECT_GT(wrong, 0);
}

template <class Tile>
void expect_accumulators_cover_the_tile() {
  std::set<std::pair<int, int>> seen;
  for (int tid = 0; tid < kThreads; ++tid)
    for (int blk = 0; blk < Tile::kBlocksPerGroup; ++blk)
      for (int i = 0; i < kAccumulators; ++i) {
        const int row = Tile::accumulator_row(tid, blk, i), col = accumulator_col(tid, i);
        const int row0 = Tile::group_row0(tid / kGroupThreads) + blk * kInstrM;
        ASSERT_GE(row, row0);
        ASSERT_LT(row, row0 + kInstrM);
        ASSERT_GE(col, 0);
        ASSERT_LT(col, kInstrN);
        EXPECT_TRUE(seen.insert({row, col}).second) << "row " << row << ", col " << col;
      }
  EXPECT_EQ(int(seen.size()), Tile::kBM * Tile::kBN);
}

TEST(ConvWgmmaLayout, AccumulatorsCoverTheTileOnceInTheirInstructionsRows) {
  expect_accumulators_cover_the_tile<TallTile>();
  expect_accumulators_cover_the_tile<ShortTile>();
}

template <class Tile>
void expect_room_to_align_the_ring() {
  // Dynamic shared memory starts at least 16-byte aligned; the kernel rounds its base up to the
  // swizzle's period and uses kStages stages from there.
  for (uint32_t start = 0; start < 4 * kAtomBytes; start += 16) {
    const uint32_t base = (start + kAtomBytes - 1) & ~uint32_t(kAtomBytes - 1);
    EXPECT_LE(base + kStages * Tile::kStageBytes, start + Tile::kSharedBytes) << start;
  }
  EXPECT_LE(Tile::kSharedBytes + Tile::kBM * 16, 227 * 1024) << "with the corners' table";
}

TEST(ConvWgmmaLayout, SharedMemoryLeavesRoomToAlignTheRing) {
  expect_room_to_align_the_ring<TallTile>();
  expect_room_to_align_the_ring<ShortTile>();
  // The tall tile's copies and sizes are version 4's (its gathers are tested as version 4's).
  EXPECT_EQ(TallTile::kCopiesA, wide::kCopiesA);
  EXPECT_EQ(TallTile::kStageBytes, wide::kStageBytes);
}

TEST(ConvWgmmaLayout, TheShortTileRunsWhereTallTilesWouldLeaveSmsIdle) {
  constexpr int kSms = 132;  // H100 SXM and H200
  auto rows = [](int n, int d, int h, int w) { return int64_t(n) * d * h * w; };
  // Batch 32: conv5a/5b have 13 x 4 = 52 tall tiles, conv4b 98 x 4, conv2a 6272.
  EXPECT_TRUE(use_short_tile(rows(32, 2, 7, 7), 512, kSms));
  EXPECT_FALSE(use_short_tile(rows(32, 4, 14, 14), 512, kSms));
  EXPECT_FALSE(use_short_tile(rows(32, 16, 56, 56), 128, kSms));
  // Batch 2, the GPU tests' shapes: conv2a takes the tall tile (392 blocks), conv3b the short
  // one (49 x 2), so both run in the suite.
  EXPECT_FALSE(use_short_tile(rows(2, 16, 56, 56), 128, kSms));
  EXPECT_TRUE(use_short_tile(rows(2, 8, 28, 28), 256, kSms));
  EXPECT_TRUE(use_short_tile(1, 1, 2));  // one block, two SMs
  EXPECT_FALSE(use_short_tile(1, 1, 1));
}

// Version 6's producer warpgroup copies every chunk of both tiles of a stage exactly once.
TEST(ConvWgmmaLayout, ProducerCopiesCoverEachChunkOnce) {
  for (int rows : {TallTile::kBM, ShortTile::kBM, kBN}) {
    std::set<std::pair<int, int>> chunks;
    for (int tid = 0; tid < kProducerThreads; ++tid)
      for (int j = 0; j < rows / kProducerRowsPerPass; ++j) {
        const int row = producer_copy_row(tid, j);
        ASSERT_LT(row, rows);
        EXPECT_TRUE(chunks.insert({row, copy_chunk(tid)}).second) << "chunk copied twice";
      }
    EXPECT_EQ(int(chunks.size()), rows * kChunks) << rows << " rows";
  }
}

TEST(ConvWgmmaLayout, DescriptorFieldsRoundTrip) {
  const uint32_t address = 0x1F2E0;  // 16-byte aligned, under 256 KB
  const Descriptor d = decode(smem_descriptor(address));
  EXPECT_EQ(d.start, address);
  EXPECT_EQ(d.leading, 16u);
  EXPECT_EQ(d.stride, 1024u);
  EXPECT_EQ(d.base_offset, 0);
  EXPECT_EQ(d.swizzle, 1);
}

}  // namespace
}  // namespace cu3d::cuda::pipelined::wgmma
