// Tile geometry of version 5 of the conv3d forward (conv3d_wgmma.cuh): Hopper's warpgroup MMA
// (wgmma, sm_90a) reading version 4's shared-memory stages through matrix descriptors. Plain
// constexpr arithmetic, host- and device-callable, so the CPU suite can decode the descriptors
// the way the PTX ISA defines them and check what each instruction reads
// (tests/cpu/test_conv3d_wgmma_layout.cpp).
//
// Why the stages need no new layout: versions 3 and 4 already store each tile as rows of 128
// bytes of r whose 16-byte chunks are XORed with the row's low 3 bits (conv3d_pipelined_layout.h,
// `swizzled`). That is exactly the 128-byte swizzle of a K-major wgmma operand: 8 rows of 128
// bytes per 1024-byte atom, the chunk bits [4:6] of each address XORed with its row bits [7:9],
// atoms 1024 bytes apart. Two conditions make the two agree: each stage starts on a 1024-byte
// boundary (the kernel rounds the dynamic shared memory's base up; stages and tiles are multiples
// of 1024 bytes), and every operand starts on a row that is a multiple of 8, at byte 0, 32, 64 or
// 96 of it (one k-step of 32 bytes: k16 of bf16, k8 of tf32).
#pragma once

#include <cstdint>

#include "kernels/cuda/conv3d_wide_layout.h"
#include "kernels/host_device.h"

namespace cu3d::cuda::pipelined::wgmma {

constexpr int kBN = wide::kBN;                     // 128 columns: one m64n128 instruction
constexpr int kGroupThreads = 128;                 // a warpgroup: 4 consecutive warps
constexpr int kGroups = kThreads / kGroupThreads;  // 2
constexpr int kInstrM = 64;                        // rows of one wgmma
constexpr int kInstrN = kBN;                       // its columns: the whole tile's 128
constexpr int kAccumulators = kInstrM * kInstrN / kGroupThreads;  // 64 floats per instruction
constexpr int kStepBytes = 32;                                    // r bytes per k-step of a row
constexpr int kStepsPerStage = kRowBytes / kStepBytes;            // 4
constexpr int kAtomBytes = 1024;  // 8 rows of 128 bytes: the swizzle's period

// The block tile, as forward_main_loop takes it: BM rows (256: version 4's tile, the 2
// warpgroups owning 128 rows each as two m64n128 instructions per k-step; 128: one instruction
// each, for layers whose 256-row tiles would leave SMs idle) x 128 columns, version 3's copies
// of 128-byte rows, on a ring aligned to the swizzle's period (1 KB more shared memory to round
// its base up), with one stage of math in flight and the tensor cores reading what cp.async
// wrote.
template <int BM>
struct Tile {
  static constexpr int kBM = BM, kBN = wgmma::kBN;
  static constexpr int kGroupRows = BM / kGroups;
  static constexpr int kBlocksPerGroup = kGroupRows / kInstrM;  // instructions per k-step
  static constexpr int kCopiesA = BM / kRowsPerPass, kCopiesB = kBN / kRowsPerPass;
  static constexpr int kTileABytes = BM * kRowBytes, kStageBytes = (BM + kBN) * kRowBytes;
  static constexpr int kSharedBytes = kStages * kStageBytes + kAtomBytes;
  static constexpr int kStageAlign = kAtomBytes;
  static constexpr int kMathInFlight = 1;
  static constexpr bool kAsyncProxyReads = true;
  static_assert(kGroupRows % kInstrM == 0 && kTileABytes % kAtomBytes == 0 &&
                kStageBytes % kAtomBytes == 0);

  // The first row of the block tile that warpgroup `group` owns.
  CU3D_HOST_DEVICE static constexpr int group_row0(int group) { return group * kGroupRows; }

  // Where accumulator i (< 64) of thread `tid` sits in the tile, for instruction `block` of its
  // warpgroup (PTX ISA, "Register fragment for the accumulator matrix D of wgmma .m64nNk*": warp
  // w of the warpgroup holds rows 16w .. 16w + 15; d[4j .. 4j + 3] are (g, 8j + 2t),
  // (g, 8j + 2t + 1), (g + 8, 8j + 2t), (g + 8, 8j + 2t + 1) with g = lane / 4, t = lane % 4:
  // mma.sync's C layout repeated over the columns). The column: accumulator_col.
  CU3D_HOST_DEVICE static constexpr int accumulator_row(int tid, int block, int i) {
    const int group = tid / kGroupThreads, warp = tid % kGroupThreads / 32, lane = tid % 32;
    return group_row0(group) + block * kInstrM + 16 * warp + lane / 4 + 8 * (i / 2 % 2);
  }
};
using TallTile = Tile<256>;   // version 4's
using ShortTile = Tile<128>;  // for grids of fewer 256-row tiles than SMs (C3D's conv5 at 32)
static_assert(TallTile::kSharedBytes + TallTile::kBM * 16 <= 227 * 1024,
              "the ring and the corner table fit an SM's shared memory");

// Whether an M x N GEMM runs on the 128-row tile: when the 256-row grid has fewer blocks than
// the device's `sms` (one block per SM either way, so those SMs would idle).
CU3D_HOST_DEVICE constexpr bool use_short_tile(int64_t m, int n, int sms) {
  return (m + TallTile::kBM - 1) / TallTile::kBM * ((n + kBN - 1) / kBN) < sms;
}

// Version 6's copies (conv3d_wgmma_ws.cuh): its producer warpgroup alone gathers a stage, so
// thread tid (< 128) copies chunk tid % 8 of rows tid / 8 + 16 j, j < rows / 16: version 3's
// mapping with half the threads.
constexpr int kProducerThreads = kGroupThreads;
constexpr int kProducerRowsPerPass = kProducerThreads / kChunks;  // 16
CU3D_HOST_DEVICE constexpr int producer_copy_row(int tid, int j) {
  return tid / kChunks + j * kProducerRowsPerPass;
}

// A shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format" of wgmma): bits 0-13
// the start address >> 4, 16-29 the leading-dimension byte offset >> 4 (unused by a K-major
// operand whose k-step stays inside one 128-byte swizzle row; 16 bytes by convention), 32-45 the
// stride-dimension byte offset >> 4 (1024: from one 8-row atom to the next), 49-51 the base
// offset (0: every start sits at row 0 of an atom), 62-63 the swizzle mode (1: 128 bytes).
CU3D_HOST_DEVICE constexpr uint64_t smem_descriptor(uint32_t address) {
  return uint64_t((address & 0x3FFFF) >> 4) | uint64_t(16 >> 4) << 16 |
         uint64_t(kAtomBytes >> 4) << 32 | uint64_t(1) << 62;
}

// The shared address of an operand: `rows` of a tile from row0 (a multiple of 8), at k-step
// `step` of the stage.
CU3D_HOST_DEVICE constexpr uint32_t operand_address(uint32_t tile, int row0, int step) {
  return tile + uint32_t(row0 * kRowBytes + step * kStepBytes);
}

// The column of accumulator i of thread `tid`, in any tile.
CU3D_HOST_DEVICE constexpr int accumulator_col(int tid, int i) {
  return 8 * (i / 4) + 2 * (tid % 4) + i % 2;
}

}  // namespace cu3d::cuda::pipelined::wgmma
