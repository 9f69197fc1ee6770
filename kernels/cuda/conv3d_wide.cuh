// Version 4 ("wide") of the conv3d forward for tf32 and bf16: version 3 (conv3d_pipelined.cuh)
// with a 256 x 128 block tile whose 8 warps own 64 x 64 each (conv3d_wide_layout.h says why).
// Device code only: included by conv3d_fwd.cu.
//
// The same as version 3: the gathers (row_corner, tile_tap, a_chunk, b_chunk), the 4-stage
// cp.async ring of XOR-swizzled 128-byte rows, the ldmatrix addressing and, per output, the same
// mma instructions over r in the same order, so it matches versions 2 and 3 bit for bit. What
// differs: per k-step a warp loads 4 A fragments (64 rows) and 4 pairs of B fragments (64
// columns) with 8 ldmatrix.x4 and issues 32 mma on 128 accumulators per thread; 192 KB of stages
// and launch bounds (256, 1): one block per SM, up to 255 registers.
//
// Where it applies (conv3d_fwd_wide_supports): version 3's shapes, for the epilogues that store
// each output (bias, ReLU, the pool by atomics); the window-pool and layer-norm statistics
// epilogues reduce over version 3's 32 x 32 warp pieces and stay there. It pays where k fills
// the 128 columns (C3D's conv2a-conv5b forward; bwd-data into 128 or more channels).
//
// Cost: 2 * k * taps * c * M FLOPs; reads x and w in the compute type (x once per N tile, from
// L2 after the first), writes y.
#pragma once

#include <type_traits>

#include <cuda_bf16.h>

#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/cuda/conv3d_pipelined.cuh"
#include "kernels/cuda/conv3d_wide_layout.h"

namespace cu3d::cuda::pipelined::wide {

using igemm::Geometry;
using igemm::TensorCoreMath;

// The accumulators of a warp's 64 x 64 piece: 4 blocks of 16 rows x 8 tiles of 8 columns, in the
// mma's C layout (c0, c1 at row g, columns 2t, 2t + 1; c2, c3 at row g + 8).
template <Precision P>
struct WideMath {
  float acc[4][8][4] = {};

  // The math of one stage: 4 k-steps, each 4 ldmatrix.x4 for A, 4 for B and 32 mma.
  __device__ void stage(uint32_t a_tile, uint32_t b_tile) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int wm = warp_row0(warp), wn = warp_col0(warp);
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      uint32_t fa[4][4], fb[8][2];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        ldmatrix_x4(a_tile + swizzled(a_fragment_row(lane, wm + 16 * i), a_fragment_chunk(lane, s)),
                    fa[i]);
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        uint32_t q[4];
        ldmatrix_x4(b_tile + swizzled(b_fragment_row(lane, wn + 8 * j), b_fragment_chunk(lane, s)),
                    q);
        fb[j][0] = q[0], fb[j][1] = q[1], fb[j + 1][0] = q[2], fb[j + 1][1] = q[3];
      }
      if constexpr (P == Precision::tf32) {
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            fa[i][e] = igemm::to_tf32(__uint_as_float(fa[i][e]));
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            fb[j][e] = igemm::to_tf32(__uint_as_float(fb[j][e]));
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          TensorCoreMath<P>::mma(acc[i][j], fa[i], fb[j]);
    }
  }

  // Calls out(row, col, value) for every accumulator of the thread, rows and columns of the block.
  template <class Out>
  __device__ void for_each(Out out) const {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int wm = warp_row0(warp), wn = warp_col0(warp);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q)
          out(wm + 16 * i + g + 8 * (q / 2), wn + 8 * j + 2 * t + q % 2, acc[i][j][q]);
  }
};

// Whether `Problem`'s epilogue is a store per output, which version 4 runs (the window pool and
// the layer-norm statistics reduce over version 3's warp pieces).
template <class Problem>
constexpr bool kStoresEachOutput = !requires(const Problem& q) {
  q.pool_window(0, 0, 0.f);
}
&&!requires(const Problem& q) {
  q.row_stats(0, 0, 0.f, 0.f);
};

// The kernel: version 3's (conv3d_fwd_pipelined) on the wider tile. Grid: (N tiles, M tiles).
template <class Problem, Precision P>
__global__ void __launch_bounds__(kThreads, 1)
    conv3d_fwd_wide(Problem prob, const void* x, const void* w) {
  static_assert(kStoresEachOutput<Problem>, "version 4 runs the per-output epilogues only");
  using Element = std::conditional_t<P == Precision::bf16, __nv_bfloat16, float>;
  constexpr int kPerChunk = kChunkBytes / int(sizeof(Element));
  constexpr int kPerRow = kRowBytes / int(sizeof(Element));  // r per stage
  extern __shared__ __align__(128) unsigned char stages[];
  __shared__ RowCorner corners[kBM];

  const Geometry& g = prob.g;
  const int n0 = blockIdx.x * kBN, m0 = blockIdx.y * kBM;
  const int tid = threadIdx.x;
  for (int row = tid; row < kBM; row += kThreads) {
    const auto a = prob.a_row(m0 + row);
    corners[row] = row_corner(g, a.o, a.valid);
  }
  __syncthreads();

  const auto* xs = static_cast<const Element*>(x);
  const auto* ws = static_cast<const Element*>(w);
  const uint32_t base = shared_address(stages);
  const int chunk = copy_chunk(tid);
  const int tiles = prob.R / kPerRow;

  // Issues the copies of r-tile `kt` into its ring slot and commits them as one group (an
  // empty group past the last tile keeps the wait counts uniform).
  auto load_tile = [&](int kt) {
    if (kt < tiles) {
      const uint32_t a_tile = base + (kt % kStages) * kStageBytes, b_tile = a_tile + kTileABytes;
      const int r0 = kt * kPerRow;
      const TileTap t = tile_tap(g, r0);
      const int c0 = t.channel + chunk * kPerChunk;
#pragma unroll
      for (int j = 0; j < kCopiesA; ++j) {
        const int row = copy_row(tid, j);
        const int at = a_chunk(g, corners[row], t.tap, c0);
        cp_async16(a_tile + swizzled(row, chunk), at < 0 ? xs : xs + at, at < 0 ? 0 : kChunkBytes);
      }
#pragma unroll
      for (int j = 0; j < kCopiesB; ++j) {
        const int row = copy_row(tid, j);
        const int64_t at = b_chunk(n0 + row, prob.N, prob.R, r0 + chunk * kPerChunk);
        cp_async16(b_tile + swizzled(row, chunk), at < 0 ? ws : ws + at, at < 0 ? 0 : kChunkBytes);
      }
    }
    cp_async_commit();
  };

  WideMath<P> math;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    load_tile(s);
  for (int kt = 0; kt < tiles; ++kt) {
    // Tile kt has landed for every thread, and every warp is past tile kt - 1, whose slot the
    // next load reuses (version 3's ring).
    cp_async_wait<kStages - 2>();
    __syncthreads();
    load_tile(kt + kStages - 1);
    const uint32_t a_tile = base + (kt % kStages) * kStageBytes;
    math.stage(a_tile, a_tile + kTileABytes);
  }
  cp_async_wait<0>();
  math.for_each([&](int row, int col, float value) {
    const int m = m0 + row, n = n0 + col;
    if (m < prob.M && n < prob.N) prob.store(m, n, value, 0);
  });
}

}  // namespace cu3d::cuda::pipelined::wide
