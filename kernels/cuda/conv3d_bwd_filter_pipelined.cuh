// The pipelined conv3d backward-filter (version 3, bf16 and tf32): version 2's GEMM
// (conv3d_bwd_filter.cu) with the forward's version 3 data movement (conv3d_pipelined.cuh), turned
// for operands that run along the columns rather than along r. Device code only: included by
// conv3d_bwd_filter.cu.
//
//   dw (M = k, N = taps * c) = sum over r < R = n * od * oh * ow of A(m, r) B(r, n)
//   A(m, r) = dy[r][m]                          one row of 128 filters per position
//   B(r, n) = x[pixel(r) + tap(n)][channel(n)]  one row of 64 channels, zero in padding
//
// What is the forward's: the 128 x 64 tile and its 8 warps of 32 x 32 (so version 2's math and
// epilogue), 16-byte cp.async copies straight into a 4-stage ring of XOR-swizzled tiles, one
// barrier per stage of 4 mma k-steps. What differs:
//  * the tiles are stored [r][column] as memory has them (conv3d_bwd_filter_pipelined_layout.h):
//    in bf16 ldmatrix.x4.trans reads them as the mma fragments, in tf32 (which ldmatrix cannot
//    transpose: it moves 16-bit elements) each lane loads its fragments' values from shared
//    memory one by one, conflict-free by the tf32 swizzle.
//  * the N tile lies in one tap (c a multiple of 64), so a block has one tap and one channel
//    range; each thread splits its 2 B rows' positions into pixels once per stage (the rows move
//    along r every stage), and A rows need no gather at all.
//  * R is long and the result small (1728 x 128 for conv2a), so R is split across grid.z into
//    partial results that conv3d_bwd_filter sums in a deterministic second pass, as version 2
//    does. A stage past R, or a row past M, loads zeros.
//
// Cost: 2 * k * taps * c * R FLOPs (C3D's conv2a at batch 32: 710 GFLOP). Bytes: x and dy in
// the compute type (bf16, or fp32 rounded to tf32), each read once per tile that shares it (from
// L2 after the first), and the split-K partials, 4 * splits * |dw| written here and read back by
// the sum. CPU reference: cpu::conv3d_bwd_filter (kernels/cpu/conv3d.h); docs/kernels/
// conv3d_cuda.md, "Version 3 of backward-filter".
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

#include "kernels/cuda/conv3d_bwd_filter_pipelined_layout.h"
#include "kernels/cuda/conv3d_pipelined.cuh"

namespace cu3d::cuda::pipelined::filter {

using igemm::Geometry;
using igemm::TensorCoreMath;

// The math of one stage, bf16: 4 k-steps of 16 r, each 2 ldmatrix.x4.trans for A (two
// 16-filter blocks), 2 for B (two pairs of 8-column tiles) and 8 mma on version 2's accumulators.
__device__ inline void stage_math(TensorCoreMath<Precision::bf16>& math, uint32_t a_tile,
                                  uint32_t b_tile) {
  using L = Layout<Precision::bf16>;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
#pragma unroll
  for (int s = 0; s < L::kStageR / L::kStepR; ++s) {
    uint32_t fa[2][4], fb[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
      ptx::ldmatrix_x4_trans(
          a_tile + L::swizzled(a_fragment_row(lane, s), a_fragment_chunk(lane, wm + 16 * i),
                               L::kRowBytesA),
          fa[i]);
#pragma unroll
    for (int j = 0; j < 4; j += 2) {
      uint32_t q[4];
      ptx::ldmatrix_x4_trans(
          b_tile + L::swizzled(b_fragment_row(lane, s), b_fragment_chunk(lane, wn + 8 * j),
                               L::kRowBytesB),
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

// The math of one stage, tf32: 4 k-steps of 8 r. Lane (g = lane / 4, t = lane % 4) loads the
// values of mma.m16n8k8's fragments (PTX ISA, "Matrix fragments for mma.m16n8k8"): of each
// 16-filter block A (m g, r t), (m g + 8, r t), (m g, r t + 4), (m g + 8, r t + 4), of each
// 8-column tile B (r t, n g), (r t + 4, n g): version 2's TensorCoreMath::step, on the ring.
__device__ inline void stage_math(TensorCoreMath<Precision::tf32>& math, uint32_t a_tile,
                                  uint32_t b_tile) {
  using L = Layout<Precision::tf32>;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
  auto a = [&](int r, int m) {
    return ptx::ld_shared_u32(a_tile + L::value_at(r, m, L::kRowBytesA));
  };
  auto b = [&](int r, int n) {
    return ptx::ld_shared_u32(b_tile + L::value_at(r, n, L::kRowBytesB));
  };
#pragma unroll
  for (int s = 0; s < L::kStageR / L::kStepR; ++s) {
    const int lo = L::kStepR * s + t, hi = lo + 4;
    uint32_t fa[2][4], fb[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int m = wm + 16 * i + g;
      fa[i][0] = a(lo, m), fa[i][1] = a(lo, m + 8), fa[i][2] = a(hi, m), fa[i][3] = a(hi, m + 8);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = wn + 8 * j + g;
      fb[j][0] = b(lo, n), fb[j][1] = b(hi, n);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        TensorCoreMath<Precision::tf32>::mma(math.acc[i][j], fa[i], fb[j]);
  }
}

// The kernel. Grid: (N tiles, M tiles, splits of R); split z covers stages
// [z * stages_per_split, (z + 1) * stages_per_split) and stores its partial dw through
// prob.store(m, n, v, z). The N tiles of one split are neighbours in launch order, so they walk
// the same rows of dy (and overlapping rows of x) at about the same time: those come from L2.
// `x` and `dy` are copies of the fp32 tensors in the compute type (Value: bf16, or fp32 values
// rounded to tf32). Launch bounds as the forward's: two blocks (192 KB of stages) per SM.
template <Precision P, class Problem, class Value>
__global__ void __launch_bounds__(kThreads, 2)
    conv3d_bwd_filter_pipelined(Problem prob, const Value* x, const Value* dy,
                                int stages_per_split) {
  using L = Layout<P>;
  const Geometry& g = prob.g;
  const int n_tile = blockIdx.x, split = blockIdx.z, tid = threadIdx.x;
  const FilterBlock block = filter_block<P>(g, prob.R, n_tile, blockIdx.y, split, stages_per_split);
  // This thread's filters in every A copy and channels in every B copy.
  const int m = block.m0 + L::copy_chunk_a(tid) * L::kValuesPerChunk;
  const int channel = block.c0 + L::copy_chunk_b(tid) * L::kValuesPerChunk;
  const uint32_t base = ptx::shared_address(ptx::dynamic_shared_memory());

  // Issues the copies of stage `st` (counted within the split) into its ring slot and commits
  // them as one group (an empty group past the last stage keeps the wait counts uniform).
  auto load_stage = [&](int st) {
    if (st < block.count) {
      const uint32_t a_tile = base + (st % kStages) * L::kStageBytes,
                     b_tile = a_tile + L::kTileABytes;
      const int r0 = (block.first + st) * L::kStageR;
#pragma unroll
      for (int j = 0; j < L::kCopiesA; ++j) {
        const int row = L::copy_row_a(tid, j);
        const int64_t at = dy_chunk(r0 + row, m, prob.R, prob.M);
        ptx::cp_async16(a_tile + L::swizzled(row, L::copy_chunk_a(tid), L::kRowBytesA),
                        at < 0 ? dy : dy + at, at < 0 ? 0 : kChunkBytes);
      }
#pragma unroll
      for (int j = 0; j < L::kCopiesB; ++j) {
        const int row = L::copy_row_b(tid, j);
        const int64_t at = x_chunk(g, block.tap, r0 + row, prob.R, channel);
        ptx::cp_async16(b_tile + L::swizzled(row, L::copy_chunk_b(tid), L::kRowBytesB),
                        at < 0 ? x : x + at, at < 0 ? 0 : kChunkBytes);
      }
    }
    ptx::cp_async_commit();
  };

  TensorCoreMath<P> math;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    load_stage(s);
  for (int st = 0; st < block.count; ++st) {
    // Stage st has landed for every thread, and every warp is past stage st - 1, whose slot
    // the next load reuses (the forward's ring, conv3d_pipelined.cuh).
    ptx::cp_async_wait<kStages - 2>();
    __syncthreads();
    load_stage(st + kStages - 1);
    const uint32_t a_tile = base + (st % kStages) * L::kStageBytes;
    stage_math(math, a_tile, a_tile + L::kTileABytes);
  }
  ptx::cp_async_wait<0>();
  igemm::epilogue(prob, math, block.m0, n_tile * kBN, n_tile, split);
}

}  // namespace cu3d::cuda::pipelined::filter
