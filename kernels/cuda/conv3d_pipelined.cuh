// The pipelined conv3d forward (version 3) for tf32 and bf16: version 2's GEMM and tile
// (128 x 64, 8 warps of 32 x 32, the same epilogues), with the data movement rebuilt around
// the tensor cores. Device code only: included by conv3d_fwd.cu.
//
// What changes against version 2 (docs/kernels/conv3d_cuda.md, "Version 3"):
//  * cp.async straight from global to shared memory, 16 bytes at a time, in a 4-stage ring:
//    no staging registers, no conversion on the way, three tiles in flight behind the math.
//    bf16 therefore reads bf16 operands: the host converts x and w first (6 bytes moved per
//    element of x, a small fraction of the conv; cuDNN's bf16 takes bf16 tensors too).
//  * a stage holds 128 bytes of r per row (64 bf16, 32 fp32): 4 mma k-steps per barrier
//    instead of 2.
//  * fragments come from ldmatrix.x4 (4 instructions per 8 mma instead of 12 scalar loads)
//    out of [row][r] tiles whose 16-byte chunks are XOR-swizzled (conv3d_pipelined_layout.h).
//  * tf32 rounds the fragments in registers (cvt.rna, as version 2 rounds while staging), so
//    both versions multiply the same operands in the same order.
//
// Where it applies (conv3d_fwd_pipelined_supports): c a multiple of one stage row (64 bf16,
// 32 tf32: C3D's conv2a-conv5b), so a stage never crosses a tap and each 16-byte chunk is
// one aligned load, and x 16-byte aligned. The gather per stage: the tap is uniform across
// the block, each thread splits it once and checks its 4 rows' bounds (the rows' pixels sit in
// a shared table filled once per block); padding and rows past M load zeros (cp.async with a
// source size of 0).
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>

#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/cuda/conv3d_pipelined_layout.h"
#include "kernels/cuda/ptx.cuh"

namespace cu3d::cuda::pipelined {

using igemm::Geometry;
using igemm::TensorCoreMath;

// The epilogues and the layer-norm statistics' column groups assume version 2's tile and warps.
static_assert(kBM == igemm::kBM && kBN == igemm::kBN && kThreads == igemm::kThreads);

// The math of one stage on a warp's piece of I blocks of 16 rows x J tiles of 8 columns from
// (wm, wn): 4 k-steps, each I ldmatrix.x4 for A, J / 2 for B (pairs of mma tiles) and I x J mma
// on the accumulators, in the mma's C layout. Version 3's warps are 2 x 4 of them (32 x 32),
// version 4's 4 x 8 (64 x 64).
template <Precision P, int I, int J>
__device__ void warp_stage_math(float (&acc)[I][J][4], uint32_t a_tile, uint32_t b_tile, int wm,
                                int wn) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
    uint32_t fa[I][4], fb[J][2];
#pragma unroll
    for (int i = 0; i < I; ++i)
      ptx::ldmatrix_x4(
          a_tile + swizzled(a_fragment_row(lane, wm + 16 * i), a_fragment_chunk(lane, s)), fa[i]);
#pragma unroll
    for (int j = 0; j < J; j += 2) {
      uint32_t q[4];
      ptx::ldmatrix_x4(
          b_tile + swizzled(b_fragment_row(lane, wn + 8 * j), b_fragment_chunk(lane, s)), q);
      fb[j][0] = q[0], fb[j][1] = q[1], fb[j + 1][0] = q[2], fb[j + 1][1] = q[3];
    }
    if constexpr (P == Precision::tf32) {
#pragma unroll
      for (int i = 0; i < I; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          fa[i][e] = ptx::to_tf32(__uint_as_float(fa[i][e]));
#pragma unroll
      for (int j = 0; j < J; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          fb[j][e] = ptx::to_tf32(__uint_as_float(fb[j][e]));
    }
#pragma unroll
    for (int i = 0; i < I; ++i)
#pragma unroll
      for (int j = 0; j < J; ++j)
        TensorCoreMath<P>::mma(acc[i][j], fa[i], fb[j]);
  }
}

// Version 3's stage math: warp (warp % 4, warp / 4) owns 32 x 32 of the 128 x 64 tile, on the
// accumulators of version 2's math.
template <Precision P>
__device__ void stage_math(TensorCoreMath<P>& math, uint32_t a_tile, uint32_t b_tile) {
  const int warp = threadIdx.x / 32;
  warp_stage_math<P>(math.acc, a_tile, b_tile, (warp % 4) * 32, (warp / 4) * 32);
}

// Version 3's block tile, as forward_main_loop takes it (version 4's: conv3d_wide.cuh; version
// 5's: conv3d_wgmma_layout.h). Besides the tile's extents and copies: the alignment of the ring's
// base, how many stages of math are still in flight when stage_math returns (0: mma.sync is
// done with its registers), and whether the tensor cores read the stages straight from shared
// memory (wgmma, the async proxy), which needs a proxy fence after the copies land.
struct Version3Tile {
  static constexpr int kBM = pipelined::kBM, kBN = pipelined::kBN;
  static constexpr int kCopiesA = pipelined::kCopiesA, kCopiesB = pipelined::kCopiesB;
  static constexpr int kTileABytes = pipelined::kTileABytes, kStageBytes = pipelined::kStageBytes;
  static constexpr int kStageAlign = 128;
  static constexpr int kMathInFlight = 0;
  static constexpr bool kAsyncProxyReads = false;
};

// Fills the block's table of its rows' corners (rows m0 .. m0 + kBM of the GEMM) and waits for
// every thread's part.
template <class Tile, class Problem>
__device__ void fill_corners(const Problem& prob, int m0, RowCorner* corners) {
  for (int row = threadIdx.x; row < Tile::kBM; row += kThreads) {
    const auto a = prob.a_row(m0 + row);
    corners[row] = row_corner(prob.g, a.o, a.valid);
  }
  __syncthreads();
}

// The main loop of one block of the pipelined forward, versions 3-5 (`Tile`: their block
// tile): each r-tile's gathers (the rows' corners from the block's table, the tile's tap,
// a_chunk and b_chunk) copied by cp.async into a ring of kStages slots of swizzled 128-byte rows,
// and `stage_math(a_tile, b_tile)` on each stage once it has landed. `x` and `w` hold the
// operands in the compute type (bf16, or fp32 for tf32). Returns with every copy landed.
//
// The copies run kAhead tiles ahead of the math: a slot is refilled once the math that read it
// is done, kMathInFlight + 1 stages later, so kAhead = kStages - 1 - Tile::kMathInFlight.
template <class Tile, Precision P, class Problem, class StageMath>
__device__ void forward_main_loop(const Problem& prob, const void* x, const void* w,
                                  const RowCorner* corners, int n0, StageMath stage_math) {
  using Element = std::conditional_t<P == Precision::bf16, __nv_bfloat16, float>;
  constexpr int kPerChunk = kChunkBytes / int(sizeof(Element));
  constexpr int kPerRow = kRowBytes / int(sizeof(Element));  // r per stage
  constexpr int kAhead = kStages - 1 - Tile::kMathInFlight;
  static_assert(kAhead >= 1);

  const Geometry& g = prob.g;
  const int tid = threadIdx.x;
  const auto* xs = static_cast<const Element*>(x);
  const auto* ws = static_cast<const Element*>(w);
  uint32_t base = ptx::shared_address(ptx::dynamic_shared_memory());
  if constexpr (Tile::kStageAlign > 128)
    base = (base + Tile::kStageAlign - 1) & ~(Tile::kStageAlign - 1);
  const int chunk = copy_chunk(tid);
  const int tiles = prob.R / kPerRow;

  // Issues the copies of r-tile `kt` into its ring slot and commits them as one group (an
  // empty group past the last tile keeps the wait counts uniform).
  auto load_tile = [&](int kt) {
    if (kt < tiles) {
      const uint32_t a_tile = base + (kt % kStages) * Tile::kStageBytes;
      const uint32_t b_tile = a_tile + Tile::kTileABytes;
      const int r0 = kt * kPerRow;
      const TileTap t = tile_tap(g, r0);
      const int c0 = t.channel + chunk * kPerChunk;
#pragma unroll
      for (int j = 0; j < Tile::kCopiesA; ++j) {
        const int row = copy_row(tid, j);
        const int at = a_chunk(g, corners[row], t.tap, c0);
        ptx::cp_async16(a_tile + swizzled(row, chunk), at < 0 ? xs : xs + at,
                        at < 0 ? 0 : kChunkBytes);
      }
#pragma unroll
      for (int j = 0; j < Tile::kCopiesB; ++j) {
        const int row = copy_row(tid, j);
        const int64_t at = b_chunk(n0 + row, prob.N, prob.R, r0 + chunk * kPerChunk);
        ptx::cp_async16(b_tile + swizzled(row, chunk), at < 0 ? ws : ws + at,
                        at < 0 ? 0 : kChunkBytes);
      }
    }
    ptx::cp_async_commit();
  };

#pragma unroll
  for (int s = 0; s < kAhead; ++s)
    load_tile(s);
  for (int kt = 0; kt < tiles; ++kt) {
    // Tile kt has landed (at most kAhead - 1 younger groups pending) for every thread, and
    // every warp's math is done with tile kt - 1 - kMathInFlight, whose slot the next load
    // reuses.
    ptx::cp_async_wait<kAhead - 1>();
    if constexpr (Tile::kAsyncProxyReads) ptx::fence_proxy_async();
    __syncthreads();
    load_tile(kt + kAhead);
    const uint32_t a_tile = base + (kt % kStages) * Tile::kStageBytes;
    stage_math(a_tile, a_tile + Tile::kTileABytes);
  }
  ptx::cp_async_wait<0>();
}

// The kernel. Grid: (N tiles, M tiles): the N tiles of one M tile are neighbours in launch
// order, so the A rows they share come from L2. `prob` supplies the geometry, each row's pixel
// (a_row) and the epilogue. Launch bounds (256, 2): two blocks (192 KB of stages) per SM, 128
// registers.
template <class Problem, Precision P>
__global__ void __launch_bounds__(kThreads, 2)
    conv3d_fwd_pipelined(Problem prob, const void* x, const void* w) {
  __shared__ RowCorner corners[kBM];
  const int n_tile = blockIdx.x, n0 = n_tile * kBN, m0 = blockIdx.y * kBM;
  fill_corners<Version3Tile>(prob, m0, corners);
  TensorCoreMath<P> math;
  forward_main_loop<Version3Tile, P>(prob, x, w, corners, n0,
                                     [&](uint32_t a, uint32_t b) { stage_math(math, a, b); });
  igemm::epilogue(prob, math, m0, n0, n_tile, 0);
}

}  // namespace cu3d::cuda::pipelined
