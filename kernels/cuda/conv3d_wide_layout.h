// Tile geometry of version 4 ("wide") of the conv3d forward (conv3d_wide.cuh): version 3's
// shared-memory rows, chunks, swizzle, copy assignment and ldmatrix addressing
// (conv3d_pipelined_layout.h), on a block tile of 256 x 128 whose 8 warps own 64 x 64 each.
//
// Why: in version 3 the 8 warps' ldmatrix reads (64 KB per stage) and the stage's copies (24 KB)
// move ~88 KB of shared memory per 0.5 M MACs: ~700 cycles at 128 bytes per cycle per SM,
// against ~260-380 cycles of mma (at the bf16 peak, or at the ~2/3 of it that mma.sync reaches on
// Hopper). Shared memory is the limit (measured: 200-226 TFLOP/s, 28 % of the bf16 peak). With
// 64 x 64 warp tiles on a 256 x 128 block a stage moves ~176 KB per 2.1 M MACs: ~1380 cycles
// against ~1020-1540 of mma, which become the limit.
#pragma once

#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/host_device.h"

namespace cu3d::cuda::pipelined::wide {

constexpr int kBM = 256;
constexpr int kBN = 128;
constexpr int kWarpM = 64;  // 8 warps as 4 (M) x 2 (N)
constexpr int kWarpN = 64;
constexpr int kCopiesA = kBM / kRowsPerPass;  // 8
constexpr int kCopiesB = kBN / kRowsPerPass;  // 4
constexpr int kTileABytes = kBM * kRowBytes;  // 32 KB
constexpr int kStageBytes = (kBM + kBN) * kRowBytes;
constexpr int kSharedBytes = kStages * kStageBytes;  // 192 KB: one block per SM
static_assert(kThreads / 32 == (kBM / kWarpM) * (kBN / kWarpN), "8 warps tile the block");

// The first row and column of warp `warp`'s piece of the block tile.
CU3D_HOST_DEVICE constexpr int warp_row0(int warp) {
  return (warp % (kBM / kWarpM)) * kWarpM;
}
CU3D_HOST_DEVICE constexpr int warp_col0(int warp) {
  return (warp / (kBM / kWarpM)) * kWarpN;
}

}  // namespace cu3d::cuda::pipelined::wide
