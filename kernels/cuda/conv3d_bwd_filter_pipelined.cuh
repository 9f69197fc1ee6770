// The pipelined conv3d backward-filter (version 3, bf16): version 2's GEMM (conv3d_bwd_filter.cu)
// with the forward's version 3 data movement (conv3d_pipelined.cuh), turned for operands that run
// along the columns rather than along r. Device code only: included by conv3d_bwd_filter.cu.
//
//   dw (M = k, N = taps * c) = sum over r < R = n * od * oh * ow of A(m, r) B(r, n)
//   A(m, r) = dy[r][m]                          one 256-byte row of 128 filters per position
//   B(r, n) = x[pixel(r) + tap(n)][channel(n)]  one 128-byte row of 64 channels, zero in padding
//
// What is the forward's: the 128 x 64 tile and its 8 warps of 32 x 32 (so version 2's math and
// epilogue), 16-byte cp.async copies straight into a 4-stage ring of XOR-swizzled tiles, one
// barrier per stage of 4 mma k-steps. What differs:
//  * the tiles are stored [r][column] as memory has them, and ldmatrix.x4.trans reads them as
//    the mma fragments (conv3d_bwd_filter_pipelined_layout.h): bf16 only.
//  * the N tile lies in one tap (c a multiple of 64), so a block has one tap and one channel
//    range; each thread splits its 2 B rows' positions into pixels once per stage (the rows move
//    along r every stage), and A rows need no gather at all.
//  * R is long and the result small (1728 x 128 for conv2a), so R is split across grid.z into
//    partial results that conv3d_bwd_filter sums in a deterministic second pass, as version 2
//    does. A stage past R, or a row past M, loads zeros.
//
// Cost: 2 * k * taps * c * R FLOPs (C3D's conv2a at batch 32: 710 GFLOP). Bytes: x and dy in
// bf16, each read once per tile that shares it (from L2 after the first), and the split-K
// partials, 4 * splits * |dw| written here and read back by the sum. CPU reference:
// cpu::conv3d_bwd_filter (kernels/cpu/conv3d.h); docs/kernels/conv3d_cuda.md, "Version 3 of
// backward-filter".
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

#include "kernels/cuda/conv3d_bwd_filter_pipelined_layout.h"
#include "kernels/cuda/conv3d_pipelined.cuh"

namespace cu3d::cuda::pipelined::filter {

using igemm::Geometry;
using igemm::TensorCoreMath;

// The math of one stage: 4 k-steps of 16 r, each 2 ldmatrix.x4.trans for A (two 16-filter
// blocks), 2 for B (two pairs of 8-column tiles) and 8 mma on version 2's accumulators.
__device__ inline void stage_math(TensorCoreMath<Precision::bf16>& math, uint32_t a_tile,
                                  uint32_t b_tile) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
#pragma unroll
  for (int s = 0; s < kStageR / 16; ++s) {
    uint32_t fa[2][4], fb[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
      ptx::ldmatrix_x4_trans(a_tile + swizzled(a_fragment_row(lane, s),
                                               a_fragment_chunk(lane, wm + 16 * i), kRowBytesA),
                             fa[i]);
#pragma unroll
    for (int j = 0; j < 4; j += 2) {
      uint32_t q[4];
      ptx::ldmatrix_x4_trans(b_tile + swizzled(b_fragment_row(lane, s),
                                               b_fragment_chunk(lane, wn + 8 * j), kRowBytesB),
                             q);
      fb[j][0] = q[0], fb[j][1] = q[1], fb[j + 1][0] = q[2], fb[j + 1][1] = q[3];
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        TensorCoreMath<Precision::bf16>::mma(math.acc[i][j], fa[i], fb[j]);
  }
}

// The kernel. Grid: (N tiles, M tiles, splits of R); split z covers stages
// [z * stages_per_split, (z + 1) * stages_per_split) and stores its partial dw through
// prob.store(m, n, v, z). The N tiles of one split are neighbours in launch order, so they walk
// the same rows of dy (and overlapping rows of x) at about the same time: those come from L2.
// `x` and `dy` are bf16 copies of the fp32 tensors. Launch bounds as the forward's: two blocks
// (192 KB of stages) per SM.
template <class Problem>
__global__ void __launch_bounds__(kThreads, 2)
    conv3d_bwd_filter_pipelined(Problem prob, const __nv_bfloat16* x, const __nv_bfloat16* dy,
                                int stages_per_split) {
  const Geometry& g = prob.g;
  const int n_tile = blockIdx.x, split = blockIdx.z, tid = threadIdx.x;
  const FilterBlock block = filter_block(g, prob.R, n_tile, blockIdx.y, split, stages_per_split);
  const int m = block.m0 + copy_chunk_a(tid) * 8;  // this thread's 8 filters in every A copy
  const int channel = block.c0 + copy_chunk(tid) * 8;
  const uint32_t base = ptx::shared_address(ptx::dynamic_shared_memory());

  // Issues the copies of stage `st` (counted within the split) into its ring slot and commits
  // them as one group (an empty group past the last stage keeps the wait counts uniform).
  auto load_stage = [&](int st) {
    if (st < block.count) {
      const uint32_t a_tile = base + (st % kStages) * kStageBytes, b_tile = a_tile + kTileABytes;
      const int r0 = (block.first + st) * kStageR;
#pragma unroll
      for (int j = 0; j < kCopiesA; ++j) {
        const int row = copy_row_a(tid, j);
        const int64_t at = dy_chunk(r0 + row, m, prob.R, prob.M);
        ptx::cp_async16(a_tile + swizzled(row, copy_chunk_a(tid), kRowBytesA),
                        at < 0 ? dy : dy + at, at < 0 ? 0 : kChunkBytes);
      }
#pragma unroll
      for (int j = 0; j < kCopiesB; ++j) {
        const int row = copy_row(tid, j);
        const int64_t at = x_chunk(g, block.tap, r0 + row, prob.R, channel);
        ptx::cp_async16(b_tile + swizzled(row, copy_chunk(tid), kRowBytesB), at < 0 ? x : x + at,
                        at < 0 ? 0 : kChunkBytes);
      }
    }
    ptx::cp_async_commit();
  };

  TensorCoreMath<Precision::bf16> math;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    load_stage(s);
  for (int st = 0; st < block.count; ++st) {
    // Stage st has landed for every thread, and every warp is past stage st - 1, whose slot
    // the next load reuses (the forward's ring, conv3d_pipelined.cuh).
    ptx::cp_async_wait<kStages - 2>();
    __syncthreads();
    load_stage(st + kStages - 1);
    const uint32_t a_tile = base + (st % kStages) * kStageBytes;
    stage_math(math, a_tile, a_tile + kTileABytes);
  }
  ptx::cp_async_wait<0>();
  igemm::epilogue(prob, math, block.m0, n_tile * kBN, n_tile, split);
}

}  // namespace cu3d::cuda::pipelined::filter
