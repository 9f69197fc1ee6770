// Shared-memory layout and gathers of the pipelined conv3d backward-filter (version 3, bf16 and
// tf32, conv3d_bwd_filter_pipelined.cuh). Plain arithmetic, host- and device-callable, so the CPU
// suite checks the layout (tests/cpu/test_conv3d_pipelined_layout.cpp: the PTX semantics of
// cp.async, ldmatrix.trans, shared loads and the mma fragments played on it) and the gathers
// (tests/cpu/test_conv3d_gathers.cpp: the tiles they fetch multiplied out against the CPU conv)
// without a GPU.
//
// The GEMM is dw (M = k filters, N = taps * c) = sum over r (output positions) of
// A(m, r) B(r, n), with A = dyᵀ and B = x shifted by n's tap. In memory both operands run along
// the columns, not along r: dy[r][m] and x[pixel(r) + tap][channel]. So the stage tiles are
// stored as [r][m] and [r][n], rows of r, each one 16-byte-chunked run of global memory. In bf16,
// `ldmatrix.trans` turns 8 x 8 blocks of them into the row-major A and column-major B fragments
// of mma.m16n8k16 (it moves 16-bit elements only); in tf32 each lane loads the 32-bit values of
// its mma.m16n8k8 fragments itself (ld.shared: 16 a k-step for the warp's 8 mma, against bf16's
// 4 ldmatrix.x4 for 8 mma of twice the depth).
//
// A stage is 4 mma k-steps: 64 values of r in bf16 (16 a step), 32 in tf32 (8 a step). A is
// kStageR rows x 128 m, B kStageR rows x 64 n; 24 KB per stage either way, 4 stages.
#pragma once

#include <cstdint>

#include "kernels/cuda/conv3d_geometry.h"
#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/host_device.h"
#include "kernels/precision.h"

namespace cu3d::cuda::pipelined::filter {

// The stage tiles and copies in precision P (bf16 or tf32: 2- or 4-byte values).
template <Precision P>
struct Layout {
  static_assert(P == Precision::bf16 || P == Precision::tf32);
  static constexpr int kValueBytes = P == Precision::bf16 ? 2 : 4;
  static constexpr int kStepR = 32 / kValueBytes;  // r per mma k-step: 16 (bf16), 8 (tf32)
  static constexpr int kStageR = 4 * kStepR;       // r per stage: 64, 32
  static constexpr int kValuesPerChunk = kChunkBytes / kValueBytes;       // 8, 4
  static constexpr int kRowBytesA = kBM * kValueBytes;                    // 128 filters: 256, 512
  static constexpr int kRowBytesB = kBN * kValueBytes;                    // 64 columns: 128, 256
  static constexpr int kChunksA = kRowBytesA / kChunkBytes;               // 16, 32
  static constexpr int kChunksB = kRowBytesB / kChunkBytes;               // 8, 16
  static constexpr int kTileABytes = kStageR * kRowBytesA;                // 16 KB
  static constexpr int kStageBytes = kTileABytes + kStageR * kRowBytesB;  // 24 KB

  // Byte offset of (row, chunk) in a tile with rows of `row_bytes`: the chunk's low bits XORed
  // with the row's, so that the reads of one instruction spread over the 8 16-byte bank groups.
  // bf16: the 8 consecutive rows of r that one ldmatrix phase reads at the same logical chunk,
  // XOR (row & 7). tf32: a fragment load reads rows t = 0-3 (or 4-7) of a k-step at 8
  // consecutive columns, 2 chunks, so XOR 2 (row & 3) puts those 4 pairs in 4 pairs of groups.
  static CU3D_HOST_DEVICE constexpr int swizzled(int row, int chunk, int row_bytes) {
    const int flip = P == Precision::bf16 ? (row & 7) : (row & 3) << 1;
    return row * row_bytes + ((chunk ^ flip) * kChunkBytes);
  }
  // Byte offset of the value at (row, column) in such a tile.
  static CU3D_HOST_DEVICE constexpr int value_at(int row, int column, int row_bytes) {
    return swizzled(row, column / kValuesPerChunk, row_bytes) +
           column % kValuesPerChunk * kValueBytes;
  }

  // The copies: thread `tid` moves chunk tid % chunks of rows tid / chunks + j * rows per pass, so
  // a warp copies whole rows (dy at 2 (bf16) or 1 (tf32) positions, 128 filters; x at 4 or 2
  // positions, 64 channels), 4 copies of A and 2 of B per thread and stage in either precision.
  static constexpr int kRowsPerPassA = kThreads / kChunksA;  // 16, 8
  static constexpr int kCopiesA = kStageR / kRowsPerPassA;   // 4
  static constexpr int kRowsPerPassB = kThreads / kChunksB;  // 32, 16
  static constexpr int kCopiesB = kStageR / kRowsPerPassB;   // 2
  static CU3D_HOST_DEVICE constexpr int copy_row_a(int tid, int j) {
    return tid / kChunksA + j * kRowsPerPassA;
  }
  static CU3D_HOST_DEVICE constexpr int copy_chunk_a(int tid) { return tid % kChunksA; }
  static CU3D_HOST_DEVICE constexpr int copy_row_b(int tid, int j) {
    return tid / kChunksB + j * kRowsPerPassB;
  }
  static CU3D_HOST_DEVICE constexpr int copy_chunk_b(int tid) { return tid % kChunksB; }
};

static_assert(Layout<Precision::bf16>::kStageBytes == Layout<Precision::tf32>::kStageBytes);
constexpr int kSharedBytes = kStages * Layout<Precision::bf16>::kStageBytes;  // 96 KB
static_assert(Layout<Precision::bf16>::kRowBytesB == kRowBytes &&
                  Layout<Precision::bf16>::copy_row_b(255, 1) == copy_row(255, 1),
              "bf16's B rows and copies are the forward's");

// bf16's fragments. ldmatrix.x4.trans: lanes 8q..8q+7 give the addresses of the 8 rows (r) of
// matrix q, and lane l receives, in register q, the two 16-bit values at rows 2 (l % 4) and 2 (l %
// 4) + 1 of column l / 4: the pair of consecutive r for one column, as the fragments need it.
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
// [first, first + count) of the ceil(R / kStageR) of precision P.
struct FilterBlock {
  igemm::Tap tap;
  int c0, m0, first, count;
};
template <Precision P>
CU3D_HOST_DEVICE inline FilterBlock filter_block(const igemm::Geometry& g, int R, int n_tile,
                                                 int m_tile, int split, int stages_per_split) {
  constexpr int kStageR = Layout<P>::kStageR;
  uint32_t c0;
  const igemm::Tap tap = igemm::split_tap(g.div_c.divmod(uint32_t(n_tile * kBN), &c0), g);
  const int first = split * stages_per_split, left = (R + kStageR - 1) / kStageR - first;
  return {tap, int(c0), m_tile * kBM, first, left < stages_per_split ? left : stages_per_split};
}

// Element offset in dy of the chunk of filters (8 bf16, 4 tf32) from m at position r, or -1 (a
// zero fill) for a position past R or filters past M (M is a multiple of the chunk's).
CU3D_HOST_DEVICE inline int64_t dy_chunk(int r, int m, int R, int M) {
  return r < R && m < M ? int64_t(r) * M + m : -1;
}

// Element offset in x of the chunk of channels from `channel` that position r reads through
// the block's tap, or -1 (a zero fill) in the padding or past R.
CU3D_HOST_DEVICE inline int64_t x_chunk(const igemm::Geometry& g, const igemm::Tap& tap, int r,
                                        int R, int channel) {
  if (r >= R) return -1;
  const int at =
      igemm::input_offset(g, igemm::split_pixel(uint32_t(r), g.div_od, g.div_oh, g.div_ow), tap);
  return at < 0 ? -1 : int64_t(at) + channel;
}

}  // namespace cu3d::cuda::pipelined::filter
