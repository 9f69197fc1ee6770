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

// Version 4's block tile (256 x 128) and copies; the math is 2 warpgroups of 128 threads, each
// owning 128 rows x 128 columns as two m64n128 instructions per k-step.
constexpr int kBM = wide::kBM;
constexpr int kBN = wide::kBN;
constexpr int kGroupThreads = 128;                     // a warpgroup: 4 consecutive warps
constexpr int kGroups = kThreads / kGroupThreads;      // 2
constexpr int kGroupRows = kBM / kGroups;              // 128
constexpr int kInstrM = 64;                            // rows of one wgmma
constexpr int kInstrN = kBN;                           // its columns: the whole tile's 128
constexpr int kBlocksPerGroup = kGroupRows / kInstrM;  // 2 instructions per k-step
constexpr int kAccumulators = kInstrM * kInstrN / kGroupThreads;  // 64 floats per instruction
constexpr int kStepBytes = 32;                                    // r bytes per k-step of a row
constexpr int kStepsPerStage = kRowBytes / kStepBytes;            // 4
constexpr int kAtomBytes = 1024;  // 8 rows of 128 bytes: the swizzle's period
constexpr int kSharedBytes = wide::kSharedBytes + kAtomBytes;  // room to align the ring's base
static_assert(wide::kTileABytes % kAtomBytes == 0 && wide::kStageBytes % kAtomBytes == 0);
static_assert(kGroupRows % kInstrM == 0 && kInstrM % 8 == 0);

// The first row of the block tile that warpgroup `group` owns.
CU3D_HOST_DEVICE constexpr int group_row0(int group) {
  return group * kGroupRows;
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

// Where accumulator i (< 64) of thread `tid` sits in the tile, for instruction `block` of its
// warpgroup (PTX ISA, "Register fragment for the accumulator matrix D of wgmma .m64nNk*": warp w
// of the warpgroup holds rows 16w .. 16w + 15; d[4j .. 4j + 3] are (g, 8j + 2t), (g, 8j + 2t + 1),
// (g + 8, 8j + 2t), (g + 8, 8j + 2t + 1) with g = lane / 4, t = lane % 4: mma.sync's C layout
// repeated over the columns).
CU3D_HOST_DEVICE constexpr int accumulator_row(int tid, int block, int i) {
  const int group = tid / kGroupThreads, warp = tid % kGroupThreads / 32, lane = tid % 32;
  return group_row0(group) + block * kInstrM + 16 * warp + lane / 4 + 8 * (i / 2 % 2);
}
CU3D_HOST_DEVICE constexpr int accumulator_col(int tid, int i) {
  return 8 * (i / 4) + 2 * (tid % 4) + i % 2;
}

}  // namespace cu3d::cuda::pipelined::wgmma
