// Version 4 ("wide") of the conv3d forward for tf32 and bf16: version 3 (conv3d_pipelined.cuh)
// with a 256 x 128 block tile whose 8 warps own 64 x 64 each (conv3d_wide_layout.h says why).
// Device code only: included by conv3d_fwd.cu.
//
// It runs version 3's block code (conv3d_pipelined.cuh: fill_corners, forward_main_loop with the
// gathers and the 4-stage cp.async ring of XOR-swizzled 128-byte rows, warp_stage_math) on its
// own tile, so per output it issues the same mma instructions over r in the same order and
// matches versions 2 and 3 bit for bit. What differs: per k-step a warp loads 4 A fragments (64
// rows) and 4 pairs of B fragments (64 columns) with 8 ldmatrix.x4 and issues 32 mma on 128
// accumulators per thread; 192 KB of stages and launch bounds (256, 1): one block per SM, up to
// 255 registers.
//
// Where it applies (conv3d_fwd_wide_supports): version 3's shapes, for the epilogues that store
// each output (bias, ReLU); the window-pool and layer-norm statistics
// epilogues reduce over version 3's 32 x 32 warp pieces and stay there. It pays where k fills
// the 128 columns (C3D's conv2a-conv5b forward; bwd-data into 128 or more channels).
//
// Cost: 2 * k * taps * c * M FLOPs; reads x and w in the compute type (x once per N tile, from
// L2 after the first), writes y.
#pragma once

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

  // The math of one stage (warp_stage_math): per k-step 4 ldmatrix.x4 for A, 4 for B, 32 mma.
  __device__ void stage(uint32_t a_tile, uint32_t b_tile) {
    const int warp = threadIdx.x / 32;
    warp_stage_math<P>(acc, a_tile, b_tile, warp_row0(warp), warp_col0(warp));
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

// Version 4's block tile, as forward_main_loop takes it.
struct Tile {
  static constexpr int kBM = wide::kBM, kBN = wide::kBN;
  static constexpr int kCopiesA = wide::kCopiesA, kCopiesB = wide::kCopiesB;
  static constexpr int kTileABytes = wide::kTileABytes, kStageBytes = wide::kStageBytes;
  static constexpr int kStageAlign = Version3Tile::kStageAlign;
  static constexpr int kMathInFlight = Version3Tile::kMathInFlight;
  static constexpr bool kAsyncProxyReads = Version3Tile::kAsyncProxyReads;
};

// The kernel: version 3's (conv3d_fwd_pipelined) on the wider tile. Grid: (N tiles, M tiles).
template <class Problem, Precision P>
__global__ void __launch_bounds__(kThreads, 1)
    conv3d_fwd_wide(Problem prob, const void* x, const void* w) {
  static_assert(kStoresEachOutput<Problem>, "version 4 runs the per-output epilogues only");
  __shared__ RowCorner corners[kBM];
  const int n0 = blockIdx.x * kBN, m0 = blockIdx.y * kBM;
  fill_corners<Tile>(prob, m0, corners);
  WideMath<P> math;
  forward_main_loop<Tile, P>(prob, x, w, corners, n0,
                             [&](uint32_t a, uint32_t b) { math.stage(a, b); });
  math.for_each([&](int row, int col, float value) {
    const int m = m0 + row, n = n0 + col;
    if (m < prob.M && n < prob.N) prob.store(m, n, value, 0);
  });
}

}  // namespace cu3d::cuda::pipelined::wide
