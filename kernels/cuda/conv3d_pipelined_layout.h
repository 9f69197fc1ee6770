// Shared-memory layout of the pipelined conv3d forward (version 3, conv3d_pipelined.cuh): which
// thread copies which 16-byte chunk of a tile, where a chunk lives in shared memory, and which
// chunk each lane points `ldmatrix` at. Plain constexpr arithmetic, host- and device-callable,
// so the CPU suite can check it (tests/cpu/test_conv3d_pipelined_layout.cpp) by playing the
// PTX semantics of ldmatrix and mma on it without a GPU.
//
// A tile row holds 128 bytes of the reduction r: 64 bf16 or 32 fp32 values, as 8 chunks of 16
// bytes. One mma k-step reads 32 bytes of a row (16 bf16 for m16n8k16, 8 tf32 for m16n8k8):
// chunks 2s and 2s + 1 for step s, 4 steps per stage. In both precisions the mma fragments
// are "32-bit word t = lane % 4 of a row's chunk", so one layout serves both.
#pragma once

#include "kernels/cuda/conv3d_geometry.h"
#include "kernels/host_device.h"

namespace cu3d::cuda::pipelined {

constexpr int kThreads = 256;  // 8 warps as 4 (M) x 2 (N), each 32 x 32: version 2's layout
constexpr int kBM = 128;
constexpr int kBN = 64;
constexpr int kRowBytes = 128;
constexpr int kChunkBytes = 16;
constexpr int kChunks = kRowBytes / kChunkBytes;  // 8 per row
constexpr int kSteps = kChunks / 2;               // mma k-steps per stage
constexpr int kStages = 4;                        // cp.async pipeline depth
constexpr int kTileABytes = kBM * kRowBytes;      // 16 KB
constexpr int kStageBytes = (kBM + kBN) * kRowBytes;
constexpr int kSharedBytes = kStages * kStageBytes;  // 96 KB: dynamic shared memory

// Byte offset of (row, chunk) in a tile. The chunk index is XORed with the row's low 3 bits:
// the 8 rows one ldmatrix phase reads (same logical chunk, 8 consecutive rows) then sit in 8
// different 16-byte bank groups, so the phase is conflict-free; without it, the 128-byte rows
// would put all 8 on the same 4 banks.
CU3D_HOST_DEVICE constexpr int swizzled(int row, int chunk) {
  return row * kRowBytes + ((chunk ^ (row & 7)) * kChunkBytes);
}

// The copy: thread `tid` moves chunk column tid % 8 of rows tid / 8 + 32 * j (j < 4 for A's
// 128 rows, j < 2 for B's 64). A warp copies 4 whole rows per pass, each one contiguous
// 128-byte run of global memory (the channels of one tap, or a filter's slice of r).
constexpr int kRowsPerPass = kThreads / kChunks;  // 32
constexpr int kCopiesA = kBM / kRowsPerPass;      // 4
constexpr int kCopiesB = kBN / kRowsPerPass;      // 2
CU3D_HOST_DEVICE constexpr int copy_row(int tid, int j) {
  return tid / kChunks + j * kRowsPerPass;
}
CU3D_HOST_DEVICE constexpr int copy_chunk(int tid) {
  return tid % kChunks;
}

// ldmatrix.x4 loads four 8 x 16-byte matrices; lanes 8q..8q+7 give the row addresses of matrix
// q, and every lane receives word lane % 4 of row lane / 4 of each matrix in register q.
//
// A (16 rows at row0, step s): matrices (rows 0-7, chunk 2s), (rows 8-15, chunk 2s),
// (rows 0-7, chunk 2s+1), (rows 8-15, chunk 2s+1): registers a0..a3 of the mma fragment,
// (g, k lo), (g + 8, k lo), (g, k hi), (g + 8, k hi) with g = lane / 4.
CU3D_HOST_DEVICE constexpr int a_fragment_row(int lane, int row0) {
  return row0 + (lane & 7) + ((lane >> 3) & 1) * 8;
}
CU3D_HOST_DEVICE constexpr int a_fragment_chunk(int lane, int step) {
  return 2 * step + (lane >> 4);
}

// B, stored as rows of n (the filters) along r (16 columns at col0, step s): matrices
// (cols 0-7, chunk 2s), (cols 0-7, chunk 2s+1), (cols 8-15, chunk 2s), (cols 8-15, chunk 2s+1):
// registers b0, b1 of the 8-column mma tile at col0, then b0, b1 of the one at col0 + 8.
CU3D_HOST_DEVICE constexpr int b_fragment_row(int lane, int col0) {
  return col0 + (lane & 7) + (lane >> 4) * 8;
}
CU3D_HOST_DEVICE constexpr int b_fragment_chunk(int lane, int step) {
  return 2 * step + ((lane >> 3) & 1);
}

// ---- the gathers (tests/cpu/test_conv3d_gathers.cpp) -----------------------------------------

// One output row's place in the input: its pixel's corner (o * stride - pad) per axis and n * id,
// 16 bytes that the kernel keeps in a shared table (one load per copy). A row past M gets a corner
// no tap can bring inside, so every load of it is a zero.
struct alignas(16) RowCorner {
  int z, y, x, n_id;
};
CU3D_HOST_DEVICE inline RowCorner row_corner(const igemm::Geometry& g, const igemm::Pixel& o,
                                             bool valid) {
  if (!valid) return {-(1 << 30), 0, 0, 0};
  return {o.z * g.sd - g.pd, o.y * g.sh - g.ph, o.x * g.sw - g.pw, o.n * g.id};
}

// The tap and the first channel of the r-tile from r0 (r = tap * c + channel; c a multiple of
// the tile's extent, so a tile never crosses a tap).
struct TileTap {
  igemm::Tap tap;
  int channel;
};
CU3D_HOST_DEVICE inline TileTap tile_tap(const igemm::Geometry& g, int r0) {
  uint32_t channel;
  const igemm::Tap tap = igemm::split_tap(g.div_c.divmod(uint32_t(r0), &channel), g);
  return {tap, int(channel)};
}

// Element offset in x of the chunk from channel c0 that a row (its corner) reads through tap t,
// or -1 (a zero fill) in the padding. 32-bit: make_geometry keeps x under 2^31 elements.
CU3D_HOST_DEVICE inline int a_chunk(const igemm::Geometry& g, const RowCorner& corner,
                                    const igemm::Tap& t, int c0) {
  const int z = corner.z + t.d, y = corner.y + t.h, x = corner.x + t.w;
  const bool inside =
      unsigned(z) < unsigned(g.id) && unsigned(y) < unsigned(g.ih) && unsigned(x) < unsigned(g.iw);
  return inside ? (((corner.n_id + z) * g.ih + y) * g.iw + x) * g.c + c0 : -1;
}

// Element offset in w of the chunk from r of filter n (rows of R), or -1 (a zero fill) past N.
CU3D_HOST_DEVICE inline int64_t b_chunk(int n, int N, int R, int r) {
  return n < N ? int64_t(n) * R + r : -1;
}

}  // namespace cu3d::cuda::pipelined
