// Shared-memory layout of the pipelined conv3d backward-filter (version 3, bf16,
// conv3d_bwd_filter_pipelined.cuh). Plain constexpr arithmetic, host- and device-callable, so the
// CPU suite checks it (tests/cpu/test_conv3d_pipelined_layout.cpp) by playing the PTX semantics
// of cp.async, ldmatrix.trans and the mma fragments on it without a GPU.
//
// The GEMM is dw (M = k filters, N = taps * c) = sum over r (output positions) of
// A(m, r) B(r, n), with A = dyᵀ and B = x shifted by n's tap. In memory both operands run along
// the columns, not along r: dy[r][m] and x[pixel(r) + tap][channel]. So the stage tiles are
// stored as [r][m] and [r][n], rows of r, each one 16-byte-chunked run of global memory, and
// `ldmatrix.trans` turns 8 x 8 blocks of them into the row-major A and column-major B fragments
// of mma.m16n8k16 (bf16 only: ldmatrix moves 16-bit elements; tf32 keeps version 2).
//
// A stage is 64 values of r (4 k-steps of 16): A is 64 rows x 128 m (256 bytes: 16 chunks), B
// 64 rows x 64 n (128 bytes: 8 chunks, the forward's B layout). 24 KB per stage, 4 stages.
#pragma once

#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/host_device.h"

namespace cu3d::cuda::pipelined::filter {

constexpr int kStageR = 64;                         // values of r per stage
constexpr int kRowBytesA = kBM * 2;                 // 128 filters in bf16
constexpr int kRowBytesB = kBN * 2;                 // 64 columns of n in bf16
constexpr int kChunksA = kRowBytesA / kChunkBytes;  // 16
constexpr int kChunksB = kRowBytesB / kChunkBytes;  // 8
constexpr int kTileABytes = kStageR * kRowBytesA;   // 16 KB
constexpr int kStageBytes = kTileABytes + kStageR * kRowBytesB;
constexpr int kSharedBytes = kStages * kStageBytes;  // 96 KB
static_assert(kRowBytesB == kRowBytes, "B's rows are the forward's");

// Byte offset of (row, chunk) in a tile with rows of `row_bytes`. As in the forward, the
// chunk's low 3 bits are XORed with the row's: the 8 consecutive rows of r that one ldmatrix
// phase reads at the same logical chunk land in 8 different 16-byte bank groups.
CU3D_HOST_DEVICE constexpr int swizzled(int row, int chunk, int row_bytes) {
  return row * row_bytes + ((chunk ^ (row & 7)) * kChunkBytes);
}

// The copies. A: thread `tid` moves chunk tid % 16 of rows tid / 16 + 16 j (j < 4); a warp
// copies two whole 256-byte rows (dy at two positions, 128 filters) per pass. B: the forward's
// copy_row / copy_chunk (8 chunks, rows tid / 8 + 32 j, j < 2).
constexpr int kRowsPerPassA = kThreads / kChunksA;  // 16
constexpr int kCopiesA = kStageR / kRowsPerPassA;   // 4
constexpr int kCopiesB = kStageR / kRowsPerPass;    // 2
CU3D_HOST_DEVICE constexpr int copy_row_a(int tid, int j) {
  return tid / kChunksA + j * kRowsPerPassA;
}
CU3D_HOST_DEVICE constexpr int copy_chunk_a(int tid) {
  return tid % kChunksA;
}

// ldmatrix.x4.trans: lanes 8q..8q+7 give the addresses of the 8 rows (r) of matrix q, and lane
// l receives, in register q, the two 16-bit values at rows 2 (l % 4) and 2 (l % 4) + 1 of
// column l / 4: the pair of consecutive r for one column, as the fragments need it.
//
// A (the 16 filters at m0, step s: r = 16 s..16 s + 15): matrices (r 0-7, m 0-7),
// (r 0-7, m 8-15), (r 8-15, m 0-7), (r 8-15, m 8-15): registers a0..a3 of the mma fragment,
// (g, k lo), (g + 8, k lo), (g, k hi), (g + 8, k hi) with g = lane / 4.
CU3D_HOST_DEVICE constexpr int a_fragment_row(int lane, int step) {
  return 16 * step + ((lane >> 4) & 1) * 8 + (lane & 7);
}
CU3D_HOST_DEVICE constexpr int a_fragment_chunk(int lane, int m0) {
  return m0 / 8 + ((lane >> 3) & 1);
}

// B (16 columns of n at n0, step s): matrices (r 0-7, n 0-7), (r 8-15, n 0-7), (r 0-7, n 8-15),
// (r 8-15, n 8-15): registers b0, b1 of the 8-column mma tile at n0, then of the one at n0 + 8.
CU3D_HOST_DEVICE constexpr int b_fragment_row(int lane, int step) {
  return 16 * step + ((lane >> 3) & 1) * 8 + (lane & 7);
}
CU3D_HOST_DEVICE constexpr int b_fragment_chunk(int lane, int n0) {
  return n0 / 8 + ((lane >> 4) & 1);
}

}  // namespace cu3d::cuda::pipelined::filter
