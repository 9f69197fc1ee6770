// Version 3 of the conv3d forward in fp32: version 3's data movement (conv3d_pipelined.cuh:
// fill_corners, forward_main_loop's cp.async gathers into a 4-stage ring of XOR-swizzled 128-byte
// rows) feeding FFMA on a 128 x 128 block tile. Device code only: included by conv3d_fwd.cu.
//
// Why: fp32 ran only on version 2 (conv3d_igemm.cuh, FfmaMath), 29 TFLOP/s on C3D's conv2a-conv4b
// on an H100 (session 14), 57 % of the FFMA peak, 0.71-0.98x cuDNN's FFMA kernels on all of them
// but conv4a (1.15x). Version 2
// stages each operand through registers, one barrier per 16 values of r, and issues 32 FMAs per
// three 16-byte shared loads. Here the copies go global -> shared by cp.async, three stages ahead,
// one barrier per 32 values of r, and each thread's 8 x 8 outputs take 256 FMAs per 16 loads
// (conv3d_pipelined_ffma_layout.h).
//
// Arithmetic per stage and SM (one block per SM): 8 warps x 2048 FFMA = 4096 issue cycles of the 4
// schedulers, against 1024 shared-load wavefronts (one per warp-wide load) and 32 KB copied in:
// issue slots are the limit, and ~85 % of a stage's instructions are FFMAs (the SASS,
// docs/kernels/conv3d_cuda.md).
//
// Same sums as version 2: each output is sum over r of x * w, accumulated by fmaf in r's order
// from zero, and the same epilogues (igemm::epilogue: bias, ReLU, the window pool, the layer-norm
// row statistics) add the bias after. So the stores equal version 2's bit for bit (the GPU suite
// and the emulation compare them); the row statistics add in another order.
//
// Where it applies (conv3d_fwd_pipelined_ffma_supports): version 3's shapes in fp32, c a multiple
// of 32 (C3D's conv2a-conv5b, forward and bwd-data), x and w 16-byte aligned; every epilogue.
//
// CPU reference: kernels/cpu/conv3d.h (the GPU suite and the emulation compare with it).
//
// Cost: 2 * k * taps * c * M FLOPs; reads x (once per 128-filter tile, from L2 after the first)
// and w, writes y (4 bytes per output, more for the blocks' z and statistics).
#pragma once

#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/cuda/conv3d_pipelined.cuh"
#include "kernels/cuda/conv3d_pipelined_ffma_layout.h"
#include "kernels/cuda/ptx.cuh"

namespace cu3d::cuda::pipelined::ffma {

// A thread's 8 x 8 outputs (rows thread_row(tid, i), columns thread_col(tid, j)) and what the
// epilogues ask of them, as igemm::FfmaMath has it for version 2's tile.
struct FfmaTileMath {
  float acc[kRowsPerThread][kColsPerThread] = {};

  // One stage: per 16-byte chunk of r (4 values), the thread's 8 rows and 8 columns of it, then
  // acc[i][j] += a[i][e] * b[j][e] for e in r's order.
  __device__ void stage(uint32_t a_tile, uint32_t b_tile) {
    const int tid = threadIdx.x;
    // Two chunks per turn (512 FFMAs, 8 KB of code): room to load one chunk while multiplying
    // the other without a whole stage's 2048 (32 KB) crowding the instruction caches.
#pragma unroll 2
    for (int chunk = 0; chunk < kChunks; ++chunk) {
      float4 a[kRowsPerThread], b[kColsPerThread];
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i)
        a[i] = ptx::ld_shared_f32x4(a_tile + swizzled(thread_row(tid, i), chunk));
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j)
        b[j] = ptx::ld_shared_f32x4(b_tile + swizzled(thread_col(tid, j), chunk));
      multiply(a, b, [](const float4& v) { return v.x; });
      multiply(a, b, [](const float4& v) { return v.y; });
      multiply(a, b, [](const float4& v) { return v.z; });
      multiply(a, b, [](const float4& v) { return v.w; });
    }
  }

  // Calls out(row, col, value) for every accumulator of the thread, rows and columns of the block.
  template <class Out>
  __device__ void for_each(Out out) const {
    const int tid = threadIdx.x;
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j)
        out(thread_row(tid, i), thread_col(tid, j), acc[i][j]);
  }

  // Max over windows of `win` (4 or 8) consecutive rows (window-major rows), as
  // igemm::FfmaMath::window_max: the rows of a window of 4 are row i of the warp's 4 lane rows
  // (lanes 8 and 16 apart); a window of 8 is rows 2i and 2i + 1 of them. Lane row 0 calls
  // emit(first row, col, max of value(col, acc)).
  template <class Value, class Emit>
  __device__ void window_max(int win, Value value, Emit emit) const {
    const int tid = threadIdx.x, lane_row = tid % 32 / kLaneCols;
    const bool pairs = win == 2 * kLaneRows;  // a window of 8 holds two rows of each thread
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
      if (pairs && i % 2 == 1) continue;  // the window of row i - 1 took it
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) {
        const int col = thread_col(tid, j);
        float v = value(col, acc[i][j]);
        if (pairs) v = fmaxf(v, value(col, acc[i | 1][j]));
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 8));
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
        if (lane_row == 0) emit(thread_row(tid, i), col, v);
      }
    }
  }

  // Per-row statistics over column groups of 64 (a warp's columns), as igemm::FfmaMath::row_sums
  // (the same groups of the output's columns, so the same row_sums buffer): for each row and each
  // group with a valid column (col < valid_cols), one lane calls emit(row, group, sum, m2) with
  // the sum of value(col, acc) over the group's valid columns and m2, their squared deviations
  // from their own mean. The 8 lanes of a lane row hold a row's 64 columns; shuffles add them in
  // a fixed order (deterministic).
  static constexpr int kColGroupWidth = kWarpN;
  static constexpr int kColGroups = kBN / kColGroupWidth;
  static_assert(kColGroupWidth == igemm::FfmaMath::kColGroupWidth,
                "versions 2 and 3 write the same row_sums buffer");
  template <class Value, class Emit>
  __device__ void row_sums(int valid_cols, Value value, Emit emit) const {
    const int tid = threadIdx.x, group = warp_col0(tid / 32) / kColGroupWidth;
    const int count = min(max(valid_cols - group * kColGroupWidth, 0), kColGroupWidth);
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
      float v[kColsPerThread], sum = 0.f;
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) {
        v[j] = value(thread_col(tid, j), acc[i][j]);
        sum += v[j];
      }
#pragma unroll
      for (int o = 1; o < kLaneCols; o *= 2)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
      const float mean = count > 0 ? sum / float(count) : 0.f;
      float m2 = 0.f;
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j)
        if (thread_col(tid, j) < valid_cols) m2 += (v[j] - mean) * (v[j] - mean);
#pragma unroll
      for (int o = 1; o < kLaneCols; o *= 2)
        m2 += __shfl_xor_sync(0xffffffffu, m2, o);
      if (tid % kLaneCols == 0 && count > 0) emit(thread_row(tid, i), group, sum, m2);
    }
  }

 private:
  // acc[i][j] += element(a[i]) * element(b[j]): one value of r against every row and column.
  template <class Element>
  __device__ void multiply(const float4 (&a)[kRowsPerThread], const float4 (&b)[kColsPerThread],
                           Element element) {
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j)
        acc[i][j] = fmaf(element(a[i]), element(b[j]), acc[i][j]);
  }
};

// The block tile, as forward_main_loop takes it: version 3's rows and copies, 128 rows of each
// operand.
struct Tile {
  static constexpr int kBM = ffma::kBM, kBN = ffma::kBN;
  static constexpr int kCopiesA = ffma::kCopiesA, kCopiesB = ffma::kCopiesB;
  static constexpr int kTileABytes = ffma::kTileABytes, kStageBytes = ffma::kStageBytes;
  static constexpr int kStageAlign = Version3Tile::kStageAlign;
  static constexpr int kMathInFlight = Version3Tile::kMathInFlight;  // loads end in registers
  static constexpr bool kAsyncProxyReads = Version3Tile::kAsyncProxyReads;
};

// The kernel. Grid: (N tiles, M tiles), the N tiles of one M tile neighbours in launch order (they
// share A rows, from L2). Launch bounds (256, 1): 128 KB of stages, one block per SM, and room
// for the 64 accumulators, the 64 values of a chunk's loads and the next chunk's in flight.
template <class Problem>
__global__ void __launch_bounds__(kThreads, 1) conv3d_fwd_pipelined_ffma(Problem prob) {
  __shared__ RowCorner corners[kBM];
  const int n_tile = blockIdx.x, n0 = n_tile * kBN, m0 = blockIdx.y * kBM;
  fill_corners<Tile>(prob, m0, corners);
  FfmaTileMath math;
  forward_main_loop<Tile, Precision::fp32>(prob, prob.x, prob.w, corners, n0,
                                           [&](uint32_t a, uint32_t b) { math.stage(a, b); });
  igemm::epilogue(prob, math, m0, n0, n_tile, 0);
}

}  // namespace cu3d::cuda::pipelined::ffma
