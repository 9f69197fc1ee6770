// Tile geometry of version 3's fp32 form (conv3d_pipelined_ffma.cuh): version 3's ring of
// swizzled 128-byte rows and its copy assignment (conv3d_pipelined_layout.h), on a 128 x 128
// block tile whose threads each own 8 x 8 outputs, multiplied by FFMA out of 16-byte shared
// loads. Plain constexpr arithmetic, host- and device-callable, so the CPU suite checks it
// (tests/cpu/test_conv3d_pipelined_layout.cpp): every output owned once, every load
// conflict-free, the pool windows on the lanes the epilogue's shuffles join.
//
// Why this shape: per 4 values of r a thread loads its 8 rows' and 8 columns' 16-byte chunks
// (16 loads) and issues 8 x 8 x 4 = 256 FMAs, 16 FMAs per load; version 2's 8 x 4 outputs from
// [r][row] tiles issue 32 FMAs per 3 loads of one r (about 11 per load) and stage every operand
// through registers. A warp's lanes are 4 (rows) x 8 (columns): a load of A reaches 4 distinct
// chunks (the 8 lanes of a row share one, a broadcast), a load of B 8; with the rows of a lane 4
// apart and its columns 8 apart, those chunks lie in rows of distinct (row & 7), which the
// swizzle puts in distinct 16-byte bank groups: one shared-memory wavefront per load.
#pragma once

#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/host_device.h"

namespace cu3d::cuda::pipelined::ffma {

constexpr int kBM = 128;
constexpr int kBN = 128;
constexpr int kWarpM = 32;  // 8 warps as 4 (M) x 2 (N)
constexpr int kWarpN = 64;
constexpr int kLaneRows = 4;  // a warp's 32 lanes as 4 (M) x 8 (N)
constexpr int kLaneCols = 8;
constexpr int kRowsPerThread = kWarpM / kLaneRows;  // 8, kLaneRows apart
constexpr int kColsPerThread = kWarpN / kLaneCols;  // 8, kLaneCols apart
constexpr int kPerChunk = kChunkBytes / 4;          // fp32 values of r per 16-byte load
constexpr int kCopiesA = kBM / kRowsPerPass;        // 4
constexpr int kCopiesB = kBN / kRowsPerPass;        // 4
constexpr int kTileABytes = kBM * kRowBytes;        // 16 KB
constexpr int kStageBytes = (kBM + kBN) * kRowBytes;
constexpr int kSharedBytes = kStages * kStageBytes;  // 128 KB: one block per SM
static_assert(kThreads / 32 == (kBM / kWarpM) * (kBN / kWarpN), "8 warps tile the block");
static_assert(kLaneRows * kLaneCols == 32);

// The first row and column of warp `warp`'s piece of the block tile.
CU3D_HOST_DEVICE constexpr int warp_row0(int warp) {
  return (warp % (kBM / kWarpM)) * kWarpM;
}
CU3D_HOST_DEVICE constexpr int warp_col0(int warp) {
  return (warp / (kBM / kWarpM)) * kWarpN;
}

// Row i (< 8) and column j (< 8) of thread `tid`'s outputs in the block tile: lane l is lane row
// l / 8 and lane column l % 8, so the lanes of a lane row are consecutive (rows 4 apart keep a
// window of 4 consecutive rows on the 4 lane rows, lanes 8 apart).
CU3D_HOST_DEVICE constexpr int thread_row(int tid, int i) {
  return warp_row0(tid / 32) + (tid % 32) / kLaneCols + kLaneRows * i;
}
CU3D_HOST_DEVICE constexpr int thread_col(int tid, int j) {
  return warp_col0(tid / 32) + (tid % 32) % kLaneCols + kLaneCols * j;
}

}  // namespace cu3d::cuda::pipelined::ffma
