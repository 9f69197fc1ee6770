// Shared-memory layout and gathers of the pipelined conv3d backward-filter (version 3, bf16,
// conv3d_bwd_filter_pipelined.cuh). Plain arithmetic, host- and device-callable, so the CPU suite
// checks the layout (tests/cpu/test_conv3d_pipelined_layout.cpp: the PTX semantics of cp.async,
// ldmatrix.trans and the mma fragments played on it) and the gathers (tests/cpu/
// test_conv3d_gathers.cpp: the tiles they fetch multiplied out against the CPU conv) without a
// GPU.
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

#include <cstdint>

#include "kernels/cuda/conv3d_geometry.h"
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

// ---- the gathers -----------------------------------------------------------------------------

// What block (n_tile, m_tile, split) of the grid works on: its 64 columns of n are channels
// c0..c0 + 63 of one tap (c is a multiple of 64), its filters start at m0, and it runs stages
// [first, first + count) of the ceil(R / 64).
struct FilterBlock {
  igemm::Tap tap;
  int c0, m0, first, count;
};
CU3D_HOST_DEVICE inline FilterBlock filter_block(const igemm::Geometry& g, int R, int n_tile,
                                                 int m_tile, int split, int stages_per_split) {
  uint32_t c0;
  const igemm::Tap tap = igemm::split_tap(g.div_c.divmod(uint32_t(n_tile * kBN), &c0), g);
  const int first = split * stages_per_split, left = (R + kStageR - 1) / kStageR - first;
  return {tap, int(c0), m_tile * kBM, first, left < stages_per_split ? left : stages_per_split};
}

// Element offset in dy of the chunk of 8 filters from m at position r, or -1 (a zero fill) for
// a position past R or filters past M (M is a multiple of 8).
CU3D_HOST_DEVICE inline int64_t dy_chunk(int r, int m, int R, int M) {
  return r < R && m < M ? int64_t(r) * M + m : -1;
}

// Element offset in x of the chunk of 8 channels from `channel` that position r reads through
// the block's tap, or -1 (a zero fill) in the padding or past R.
CU3D_HOST_DEVICE inline int64_t x_chunk(const igemm::Geometry& g, const igemm::Tap& tap, int r,
                                        int R, int channel) {
  if (r >= R) return -1;
  const int at =
      igemm::input_offset(g, igemm::split_pixel(uint32_t(r), g.div_od, g.div_oh, g.div_ow), tap);
  return at < 0 ? -1 : int64_t(at) + channel;
}

}  // namespace cu3d::cuda::pipelined::filter
