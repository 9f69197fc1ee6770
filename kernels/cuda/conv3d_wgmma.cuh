// Version 5 of the conv3d forward for tf32 and bf16: version 4's block (conv3d_wide.cuh: the
// 256 x 128 tile, its gathers and its 4-stage cp.async ring of swizzled 128-byte rows) with the
// math on Hopper's warpgroup MMA, wgmma (sm_90a), instead of ldmatrix + mma.sync. Device code
// only: included by conv3d_fwd.cu.
//
// Why: versions 3 and 4 feed mma.sync through ldmatrix, so every operand byte a warp multiplies
// crosses from shared memory into its registers first; measured on an H200, version 3 peaks at
// 200-226 TFLOP/s in bf16 (28 % of the chip), where cuDNN's Hopper kernels reach 510-565 on
// conv3b-conv4b. wgmma reads both operands straight from shared memory through descriptors, for
// a whole warpgroup (4 warps) at once, and runs asynchronously: the threads issue a stage's 8
// instructions and go on to the next stage's copies while the tensor cores work.
//
// The math (conv3d_wgmma_layout.h): warpgroup g owns rows 128 g .. 128 g + 127 of the tile as two
// m64n128 instructions per k-step (k16 bf16, k8 tf32: 32 bytes of each row), 4 k-steps per stage,
// 128 fp32 accumulators per thread. The stage tiles are version 4's: its swizzle is wgmma's
// 128-byte swizzle, once the ring starts on a 1024-byte boundary. Where 256-row tiles would
// leave SMs idle (fewer tiles than SMs: C3D's conv5 at batch 32 has 52 for 132 SMs), a 128-row
// tile runs instead, one instruction per warpgroup and k-step (conv3d_fwd.cu, launch_wgmma).
//
// The pipeline: one stage's instructions stay in flight behind the next (wgmma.wait_group 1), so
// the ring slot a copy reuses was read two stages ago, not one: forward_main_loop keeps 2 tiles
// of copies in flight ahead of the math instead of 3 (Tile::kMathInFlight). Writes by cp.async
// are made visible to the tensor cores' (async proxy) reads by fence.proxy.async before the
// barrier that hands a stage over.
//
// tf32: the tensor cores take the top 19 bits of each fp32 operand (truncation), so the host
// rounds x and w to tf32 first (cvt.rna, as versions 2-4 round in registers): every version
// multiplies the same operands. The accumulation order inside a wgmma is the hardware's, so
// version 5 agrees with versions 2-4 to rounding, not bit for bit.
//
// The epilogues: igemm::epilogue, as versions 2 and 3 run it (the stores, the window pool, the
// layer-norm statistics), on GroupMath's reductions over wgmma's D layout, which is mma.sync's C
// layout per warp with 128 columns.
//
// Where it applies (conv3d_fwd_wgmma_supports): version 3's shapes and every epilogue (bias,
// ReLU, both pools, the layer-norm statistics, bwd-data as the mirrored forward), on a device of
// compute capability 9.0 in a build for sm_90a. Compiled for any other target the kernel is a
// trap that the host never launches.
//
// Cost: 2 * k * taps * c * M FLOPs; reads x and w in the compute type (x once per N tile, from
// L2 after the first), writes y.
#pragma once

#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/cuda/conv3d_pipelined.cuh"
#include "kernels/cuda/conv3d_wgmma_layout.h"

namespace cu3d::cuda::pipelined::wgmma {

#if defined(CU3D_WGMMA_DEVICE)

static_assert(kAccumulators == 64, "ptx::wgmma_m64n128 takes 64 accumulators per thread");

// A warpgroup's share of the tile: its instructions' accumulators (2 in the 256-row tile, 1 in
// the 128-row one), in wgmma's D layout.
template <Precision P, class Tile>
struct GroupMath {
  static constexpr int kBlocksPerGroup = Tile::kBlocksPerGroup;
  float acc[kBlocksPerGroup][kAccumulators] = {};

  // One stage: 4 k-steps x kBlocksPerGroup instructions on descriptors of the stage's tiles,
  // committed as one group; returns once the previous stage's group has completed (its slot may
  // be refilled).
  __device__ void stage(uint32_t a_tile, uint32_t b_tile) {
    const int row0 = Tile::group_row0(threadIdx.x / kGroupThreads);
    ptx::wgmma_fence();
#pragma unroll
    for (int s = 0; s < kStepsPerStage; ++s) {
      const uint64_t b = smem_descriptor(operand_address(b_tile, 0, s));
#pragma unroll
      for (int blk = 0; blk < kBlocksPerGroup; ++blk)
        ptx::wgmma_m64n128<P>(acc[blk],
                              smem_descriptor(operand_address(a_tile, row0 + blk * kInstrM, s)), b);
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<1>();
  }

  // Waits for the last stage's instructions; the accumulators are final afterwards.
  __device__ void drain() {
    ptx::wgmma_wait<0>();
#pragma unroll
    for (int blk = 0; blk < kBlocksPerGroup; ++blk)
      ptx::fence_accumulators(acc[blk]);
  }

  // Calls out(row, col, value) for every accumulator of the thread, rows and columns of the block.
  template <class Out>
  __device__ void for_each(Out out) const {
    const int tid = threadIdx.x;
#pragma unroll
    for (int blk = 0; blk < kBlocksPerGroup; ++blk)
#pragma unroll
      for (int i = 0; i < kAccumulators; ++i)
        out(Tile::accumulator_row(tid, blk, i), accumulator_col(tid, i), acc[blk][i]);
  }

  // The epilogue reductions of igemm::epilogue, as TensorCoreMath has them: wgmma's D layout is
  // mma.sync's C layout per warp (rows g and g + 8 of a 16-row slice, columns 2t, 2t + 1 of each
  // 8-column tile), so the same shuffles serve; a warp's slice spans all 128 columns.

  // Max over windows of `win` (4 or 8) consecutive rows (window-major rows): the rows of a
  // window are the lanes differing in bits 2-3 (win 4) or 2-4 (win 8); the window's first lane
  // calls emit(first row, col, max of value(col, acc)).
  template <class Value, class Emit>
  __device__ void window_max(int win, Value value, Emit emit) const {
    const int tid = threadIdx.x, g = tid % 32 / 4;
#pragma unroll
    for (int blk = 0; blk < kBlocksPerGroup; ++blk)
#pragma unroll
      for (int i = 0; i < kAccumulators; ++i) {
        const int col = accumulator_col(tid, i);
        float v = value(col, acc[blk][i]);
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 8));
        if (win == 8) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
        if (g % win == 0) emit(Tile::accumulator_row(tid, blk, i), col, v);
      }
  }

  // Per-row statistics over column groups of 32, as TensorCoreMath::row_sums (the same groups
  // of the output's columns, so the same row_sums buffer): for each row and each group with a
  // valid column (col < valid_cols), one lane calls emit(row, group, sum, m2) with the sum of
  // value(col, acc) over the group's valid columns and m2, their squared deviations from their
  // own mean. The 4 lanes t of a row hold 8 of a group's columns each; shuffles add them in a
  // fixed order (deterministic).
  static constexpr int kColGroupWidth = 32;
  static constexpr int kColGroups = kBN / kColGroupWidth;
  static_assert(kColGroupWidth == igemm::TensorCoreMath<P>::kColGroupWidth,
                "versions 3 and 5 write the same row_sums buffer");
  template <class Value, class Emit>
  __device__ void row_sums(int valid_cols, Value value, Emit emit) const {
    constexpr int kPerGroup = kColGroupWidth / 8 * 4;  // accumulators of a group: 4 tiles x 4
    const int tid = threadIdx.x;
#pragma unroll
    for (int blk = 0; blk < kBlocksPerGroup; ++blk)
#pragma unroll
      for (int h = 0; h < 2; ++h)  // rows g and g + 8: accumulators i with i / 2 % 2 == h
#pragma unroll
        for (int group = 0; group < kColGroups; ++group) {
          const int count = min(max(valid_cols - group * kColGroupWidth, 0), kColGroupWidth);
          float v[8], sum = 0.f;
#pragma unroll
          for (int k = 0; k < 8; ++k) {  // tile k / 2 of the group, column k % 2
            const int i = group * kPerGroup + 4 * (k / 2) + 2 * h + k % 2;
            v[k] = value(accumulator_col(tid, i), acc[blk][i]);
            sum += v[k];
          }
          sum += __shfl_xor_sync(0xffffffffu, sum, 1);
          sum += __shfl_xor_sync(0xffffffffu, sum, 2);
          const float mean = count > 0 ? sum / float(count) : 0.f;
          float m2 = 0.f;
#pragma unroll
          for (int k = 0; k < 8; ++k) {
            const int i = group * kPerGroup + 4 * (k / 2) + 2 * h + k % 2;
            const float d = v[k] - mean;
            if (accumulator_col(tid, i) < valid_cols) m2 += d * d;
          }
          m2 += __shfl_xor_sync(0xffffffffu, m2, 1);
          m2 += __shfl_xor_sync(0xffffffffu, m2, 2);
          if (tid % 4 == 0 && count > 0)
            emit(Tile::accumulator_row(tid, blk, 2 * h), group, sum, m2);
        }
  }
};

#endif  // CU3D_WGMMA_DEVICE

// The kernel on `Tile` (TallTile: version 4's 256 x 128; ShortTile: 128 x 128), with the math on
// wgmma. Grid: (N tiles, M tiles). Launch bounds (256, 1): one block (193 or 129 KB of stages)
// per SM, up to 255 registers.
template <class Problem, Precision P, class Tile>
__global__ void __launch_bounds__(kThreads, 1)
    conv3d_fwd_wgmma(Problem prob, const void* x, const void* w) {
#if defined(CU3D_WGMMA_DEVICE)
  __shared__ RowCorner corners[Tile::kBM];
  const int n_tile = blockIdx.x, n0 = n_tile * kBN, m0 = blockIdx.y * Tile::kBM;
  fill_corners<Tile>(prob, m0, corners);
  GroupMath<P, Tile> math;
  forward_main_loop<Tile, P>(prob, x, w, corners, n0,
                             [&](uint32_t a, uint32_t b) { math.stage(a, b); });
  math.drain();
  igemm::epilogue(prob, math, m0, n0, n_tile, 0);
#else
  __trap();  // not built for sm_90a: conv3d_fwd_wgmma_supports keeps the host from launching it
#endif
}

}  // namespace cu3d::cuda::pipelined::wgmma
