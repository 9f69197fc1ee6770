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

namespace cu3d::cuda::pipelined {

using igemm::Geometry;
using igemm::TensorCoreMath;

// The epilogues and the layer-norm statistics' column groups assume version 2's tile and warps.
static_assert(kBM == igemm::kBM && kBN == igemm::kBN && kThreads == igemm::kThreads);

__device__ inline uint32_t shared_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; `bytes` 0 writes zeros and reads nothing.
__device__ inline void cp_async16(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ inline void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
// Waits until at most `Pending` committed groups of this thread are still in flight.
template <int Pending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

__device__ inline void ldmatrix_x4(uint32_t address, uint32_t* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// The math of one stage: 4 k-steps, each 2 ldmatrix.x4 for A (two 16-row blocks), 2 for B
// (two 16-column pairs of mma tiles) and 8 mma on the accumulators of version 2's math.
template <Precision P>
__device__ void stage_math(TensorCoreMath<P>& math, uint32_t a_tile, uint32_t b_tile) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
    uint32_t fa[2][4], fb[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
      ldmatrix_x4(a_tile + swizzled(a_fragment_row(lane, wm + 16 * i), a_fragment_chunk(lane, s)),
                  fa[i]);
#pragma unroll
    for (int j = 0; j < 4; j += 2) {
      uint32_t q[4];
      ldmatrix_x4(b_tile + swizzled(b_fragment_row(lane, wn + 8 * j), b_fragment_chunk(lane, s)),
                  q);
      fb[j][0] = q[0], fb[j][1] = q[1], fb[j + 1][0] = q[2], fb[j + 1][1] = q[3];
    }
    if constexpr (P == Precision::tf32) {
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          fa[i][e] = igemm::to_tf32(__uint_as_float(fa[i][e]));
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          fb[j][e] = igemm::to_tf32(__uint_as_float(fb[j][e]));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        TensorCoreMath<P>::mma(math.acc[i][j], fa[i], fb[j]);
  }
}

// The kernel. Grid: (N tiles, M tiles): the N tiles of one M tile are neighbours in launch
// order, so the A rows they share come from L2. `x` and `w` hold the operands in the compute
// type (bf16, or fp32 for tf32); `prob` supplies the geometry, each row's pixel (a_row) and the
// epilogue. Launch bounds (256, 2): two blocks (192 KB of stages) per SM, 128 registers.
template <class Problem, Precision P>
__global__ void __launch_bounds__(kThreads, 2)
    conv3d_fwd_pipelined(Problem prob, const void* x, const void* w) {
  using Element = std::conditional_t<P == Precision::bf16, __nv_bfloat16, float>;
  constexpr int kPerChunk = kChunkBytes / int(sizeof(Element));
  constexpr int kPerRow = kRowBytes / int(sizeof(Element));  // r per stage
  extern __shared__ __align__(128) unsigned char stages[];
  __shared__ RowCorner corners[kBM];

  const Geometry& g = prob.g;
  const int n_tile = blockIdx.x, n0 = n_tile * kBN, m0 = blockIdx.y * kBM;
  const int tid = threadIdx.x;
  if (tid < kBM) {
    const auto row = prob.a_row(m0 + tid);
    corners[tid] = row_corner(g, row.o, row.valid);
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

  TensorCoreMath<P> math;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    load_tile(s);
  for (int kt = 0; kt < tiles; ++kt) {
    // Tile kt has landed (at most kStages - 2 younger groups pending) for every thread, and
    // every warp is past tile kt - 1, whose slot the next load reuses.
    cp_async_wait<kStages - 2>();
    __syncthreads();
    load_tile(kt + kStages - 1);
    const uint32_t a_tile = base + (kt % kStages) * kStageBytes;
    stage_math(math, a_tile, a_tile + kTileABytes);
  }
  cp_async_wait<0>();
  igemm::epilogue(prob, math, m0, n0, n_tile, 0);
}

}  // namespace cu3d::cuda::pipelined
