// The implicit-GEMM conv3d kernel (version 2), shared by the three passes. Device code only:
// included by conv3d_{fwd,bwd_data,bwd_filter}.cu, never by host C++.
//
// Each pass is one GEMM C(M,N) = sum_r A(M,r) B(r,N) whose operands are gathered on the fly
// from the NDHWC tensors (no im2col buffer); see docs/kernels/conv3d_cuda.md for the index
// math of each pass. A "Problem" type supplies the gathers and the epilogue:
//   M, N, R             the GEMM sizes (R: the reduction length)
//   kAContigK           whether A's 4-element load units run along r (else along M)
//   kBContigK           whether B's run along r (else along N)
//   load_a(m, r, v)     v[0..3] = A at (m..m+3, r) or (m, r..r+3), zeros outside; or, for A
//                       along r, a_row(m) (per-row set-up, done once per thread) and
//                       load_a_row(row, r, v)
//   load_b(r, n, v)     likewise for B
//   store(m, n, v, z)   writes one result of split z
//   row_stats(m, group, sum, m2)   optional: receives per-row statistics of the stored values
//                       (stored(n, acc) gives a stored value), see row_sums
//   pool_window(m, n, v), window_rows()   optional: receives the max v of stored values over
//                       each run of window_rows() rows starting at m, see window_max
//
// Tiling: a 256-thread block computes a 128 x 64 tile of C, stepping through R 16 words at a
// time (16 fp32/tf32 values or 32 bf16 values: one 32-bit word holds two bf16 of consecutive
// r). Operands are loaded global -> registers, rounded to the compute precision, and stored
// to shared memory in [r-word][m] order; the next tile's global loads are issued before the
// current tile's math, so their latency hides behind it (register double buffering).
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>

#include "kernels/cuda/conv3d_geometry.h"
#include "kernels/cuda/ptx.cuh"
#include "kernels/precision.h"
#include "kernels/shapes.h"

namespace cu3d::cuda::igemm {

constexpr int kThreads = 256;
constexpr int kBM = 128;  // tile rows: 8 warps as 4 (M) x 2 (N), each warp 32 x 32
constexpr int kBN = 64;
constexpr int kBKW = 16;  // 32-bit words of r per tile (two mma k-steps)
// Row strides of the shared tiles in words. A stride of 8 mod 32 puts the 32 lanes of a
// fragment load (row g + lane/4, word t = lane%4 or t + 4) on 32 different banks.
constexpr int kStrideA = kBM + 8;
constexpr int kStrideB = kBN + 8;
// One stage: 16 x (136 + 72) words = 13.3 KB; two stages = 26.6 KB, under the 48 KB static
// limit, which leaves room for two blocks per SM (see the launch bounds below).
struct SharedTiles {
  uint32_t a[2][kBKW][kStrideA];
  uint32_t b[2][kBKW][kStrideB];
};

// Elements of r per 32-bit shared-memory word.
template <Precision P>
constexpr int kPerWord = P == Precision::bf16 ? 2 : 1;

// Two floats rounded to bf16 in one word: `lo` (even r) in the low half, as put() stores it.
__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// Writes operand element (row, r) of a tile, rounded to the compute precision.
template <Precision P, int Stride>
__device__ inline void put(uint32_t (*tile)[Stride], int row, int r, float v) {
  if constexpr (P == Precision::bf16) {
    reinterpret_cast<__nv_bfloat16*>(&tile[r >> 1][row])[r & 1] = __float2bfloat16_rn(v);
  } else if constexpr (P == Precision::tf32) {
    tile[r][row] = ptx::to_tf32(v);
  } else {
    tile[r][row] = __float_as_uint(v);
  }
}

// Moves one operand tile (Rows x 16 words) between global memory, registers and shared
// memory. Each thread owns kUnits units of 4 elements, contiguous along r (ContigK) or along
// the rows; consecutive lanes take consecutive rows so the shared stores hit distinct banks.
template <Precision P, int Rows, bool ContigK>
struct TileCopy {
  static constexpr int kR = kBKW * kPerWord<P>;  // elements of r per tile
  static constexpr int kUnits = Rows * kR / 4 / kThreads;
  static_assert(kUnits >= 1 && Rows * kR % (4 * kThreads) == 0, "tile must split evenly");
  float v[kUnits][4];

  __device__ static void unit_origin(int j, int* row, int* r) {
    const int u = threadIdx.x + j * kThreads;
    if constexpr (ContigK) {
      *row = u % Rows, *r = 4 * (u / Rows);
    } else {
      *row = 4 * (u % (Rows / 4)), *r = u / (Rows / 4);
    }
  }

  // `load(row, r, v)` gathers 4 elements starting at global (row0 + row, r0 + r).
  template <class Load>
  __device__ void fetch(int row0, int r0, Load load) {
#pragma unroll
    for (int j = 0; j < kUnits; ++j) {
      int row, r;
      unit_origin(j, &row, &r);
      load(row0 + row, r0 + r, v[j]);
    }
  }

  template <int Stride>
  __device__ void stash(uint32_t (*tile)[Stride]) const {
#pragma unroll
    for (int j = 0; j < kUnits; ++j) {
      int row, r;
      unit_origin(j, &row, &r);
      if constexpr (ContigK && P == Precision::bf16) {
        // A unit along r is two whole words (r is a multiple of 4): two 32-bit stores of
        // packed pairs instead of four 16-bit ones.
        tile[r >> 1][row] = pack_bf16(v[j][0], v[j][1]);
        tile[(r >> 1) + 1][row] = pack_bf16(v[j][2], v[j][3]);
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if constexpr (ContigK) {
            put<P, Stride>(tile, row, r + e, v[j][e]);
          } else {
            put<P, Stride>(tile, row + e, r, v[j][e]);
          }
        }
      }
    }
  }
};

// ---- math on one shared-memory stage -------------------------------------------------------

// Tensor-core path: warp (wm, wn) owns rows wm*32..+32 and columns wn*32..+32 of the tile as
// 2 x 4 mma tiles of 16 x 8. tf32 m16n8k8 and bf16 m16n8k16 both take 8 words of r per step
// and read their fragments from the same word positions (PTX ISA, "Matrix fragments for
// mma.m16n8k8 / m16n8k16"): A at (row g / g+8, word t / t+4), B at (word t / t+4, column g),
// with g = lane / 4 and t = lane % 4. Only the instruction differs.
template <Precision P>
struct TensorCoreMath {
  float acc[2][4][4] = {};

  __device__ static void mma(float* d, const uint32_t* a, const uint32_t* b) {
    if constexpr (P == Precision::bf16)
      ptx::mma_m16n8k16_bf16(d, a, b);
    else
      ptx::mma_m16n8k8_tf32(d, a, b);
  }

  __device__ void step(const uint32_t (*a)[kStrideA], const uint32_t (*b)[kStrideB]) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
#pragma unroll
    for (int k = 0; k < kBKW; k += 8) {
      uint32_t fa[2][4], fb[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int row = wm + 16 * i + g;
        fa[i][0] = a[k + t][row];
        fa[i][1] = a[k + t][row + 8];
        fa[i][2] = a[k + t + 4][row];
        fa[i][3] = a[k + t + 4][row + 8];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        fb[j][0] = b[k + t][wn + 8 * j + g];
        fb[j][1] = b[k + t + 4][wn + 8 * j + g];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          mma(acc[i][j], fa[i], fb[j]);
    }
  }

  // Calls out(row, col, value) for every accumulator: c0,c1 at (g, 2t / 2t+1), c2,c3 at g+8.
  template <class Out>
  __device__ void for_each(Out out) const {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q)
          out(wm + 16 * i + g + 8 * (q / 2), wn + 8 * j + 2 * t + q % 2, acc[i][j][q]);
  }

  // Max over windows of `win` (4 or 8) consecutive rows, for a pool whose windows are runs
  // of rows (window-major row order): rows g of a fragment are lanes 4g + t, so the rows of a
  // window are the lanes differing in bits 2-3 (win 4) or 2-4 (win 8); shuffles take the max
  // and the window's first lane calls emit(first row, col, max of value(col, acc)).
  template <class Value, class Emit>
  __device__ void window_max(int win, Value value, Emit emit) const {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = wn + 8 * j + 2 * t + e;
            float v = value(col, acc[i][j][2 * h + e]);
            v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
            v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 8));
            if (win == 8) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
            if (g % win == 0) emit(wm + 16 * i + 8 * h + g, col, v);
          }
  }

  // Per-row statistics over column groups of 32 (the two warp columns): for each row of the
  // tile and each group, one lane calls emit(row, group, sum, m2) with the sum of value(col,
  // acc) over the group's valid columns (col < valid_cols) and m2, the sum of squared
  // deviations from their own mean. Centring each group on its mean keeps m2 exact in fp32
  // when the values share a large offset (a sum of squares would cancel). The 4 lanes t of a
  // row hold its 8 columns each; shuffles add them in a fixed order (deterministic).
  static constexpr int kColGroups = 2;
  static constexpr int kColGroupWidth = 32;
  template <class Value, class Emit>
  __device__ void row_sums(int valid_cols, Value value, Emit emit) const {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 32;
    const int count = min(max(valid_cols - wn, 0), 32);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float v[8], sum = 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            v[2 * j + e] = value(wn + 8 * j + 2 * t + e, acc[i][j][2 * h + e]);
            sum += v[2 * j + e];
          }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float mean = count > 0 ? sum / float(count) : 0.f;
        float m2 = 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float d = v[2 * j + e] - mean;
            if (wn + 8 * j + 2 * t + e < valid_cols) m2 += d * d;
          }
        m2 += __shfl_xor_sync(0xffffffffu, m2, 1);
        m2 += __shfl_xor_sync(0xffffffffu, m2, 2);
        if (t == 0) emit(wm + 16 * i + 8 * h + g, warp / 4, sum, m2);
      }
  }
};

// FFMA path: a 16 x 16 grid of threads, each owning rows {4*tm..+4, 64+4*tm..+4} and columns
// 4*tn..+4: per word of r, two 16-byte A reads (broadcast within a half-warp) and one 16-byte
// B read feed 32 FMAs.
struct FfmaMath {
  float acc[8][4] = {};

  __device__ void step(const uint32_t (*a)[kStrideA], const uint32_t (*b)[kStrideB]) {
    const int tm = threadIdx.x / 16, tn = threadIdx.x % 16;
#pragma unroll
    for (int k = 0; k < kBKW; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&a[k][4 * tm]);
      const float4 a1 = *reinterpret_cast<const float4*>(&a[k][64 + 4 * tm]);
      const float4 bv = *reinterpret_cast<const float4*>(&b[k][4 * tn]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bw[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] = fmaf(av[i], bw[j], acc[i][j]);
    }
  }

  template <class Out>
  __device__ void for_each(Out out) const {
    const int tm = threadIdx.x / 16, tn = threadIdx.x % 16;
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out((i / 4) * 64 + 4 * tm + i % 4, 4 * tn + j, acc[i][j]);
  }

  // Max over windows of `win` (4 or 8) consecutive rows, as TensorCoreMath::window_max: a
  // thread's rows 4*tm..+4 (and 64 + the same) are a window of 4; a window of 8 adds the rows
  // of lane tm ^ 1, 16 lanes away.
  template <class Value, class Emit>
  __device__ void window_max(int win, Value value, Emit emit) const {
    const int tm = threadIdx.x / 16, tn = threadIdx.x % 16;
#pragma unroll
    for (int half = 0; half < 2; ++half)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float v = value(4 * tn + j, acc[4 * half][j]);
#pragma unroll
        for (int k = 1; k < 4; ++k)
          v = fmaxf(v, value(4 * tn + j, acc[4 * half + k][j]));
        if (win == 8) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
        if (win == 4 || tm % 2 == 0) emit(64 * half + 4 * tm, 4 * tn + j, v);
      }
  }

  // Per-row statistics over all 64 columns (one group), as TensorCoreMath::row_sums: the 16
  // lanes tn of a half-warp hold a row's 4-column slices; shuffles add them in a fixed order.
  static constexpr int kColGroups = 1;
  static constexpr int kColGroupWidth = 64;
  template <class Value, class Emit>
  __device__ void row_sums(int valid_cols, Value value, Emit emit) const {
    const int tm = threadIdx.x / 16, tn = threadIdx.x % 16;
    const int count = min(max(valid_cols, 0), 64);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      float v[4], sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        v[j] = value(4 * tn + j, acc[i][j]);
        sum += v[j];
      }
#pragma unroll
      for (int o = 1; o < 16; o *= 2)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
      const float mean = count > 0 ? sum / float(count) : 0.f;
      float m2 = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (4 * tn + j < valid_cols) m2 += (v[j] - mean) * (v[j] - mean);
#pragma unroll
      for (int o = 1; o < 16; o *= 2)
        m2 += __shfl_xor_sync(0xffffffffu, m2, o);
      if (tn == 0) emit((i / 4) * 64 + 4 * tm + i % 4, 0, sum, m2);
    }
  }
};

template <Precision P>
using Math = std::conditional_t<P == Precision::fp32, FfmaMath, TensorCoreMath<P>>;

// What happens to the accumulators of a finished tile (m0, n0; N tile `n_tile`, split `split`):
// the stores, and the epilogue reductions a Problem asks for by having the member. Shared by
// version 2's kernel and the pipelined version 3 (conv3d_pipelined.cuh), whose warps own the
// same 32 x 32 pieces of the tile.
template <class Problem, class MathT>
__device__ void epilogue(const Problem& prob, const MathT& math, int m0, int n0, int n_tile,
                         int split) {
  math.for_each([&](int row, int col, float value) {
    const int m = m0 + row, n = n0 + col;
    if (m < prob.M && n < prob.N) prob.store(m, n, value, split);
  });
  // A problem that pools windows of consecutive rows (window-major rows) gets their max.
  if constexpr (requires(const Problem& q) { q.pool_window(0, 0, 0.f); }) {
    math.window_max(
        prob.window_rows(),
        [&](int col, float acc) { return n0 + col < prob.N ? prob.stored(n0 + col, acc) : 0.f; },
        [&](int row, int col, float v) {
          if (m0 + row < prob.M && n0 + col < prob.N) prob.pool_window(m0 + row, n0 + col, v);
        });
  }
  // A problem that reduces statistics in its epilogue (fwd + layer-norm statistics) gets the
  // per-row sums of its stored values over each column group of the tile.
  if constexpr (requires(const Problem& q) { q.row_stats(0, 0, 0.f, 0.f); }) {
    math.row_sums(
        prob.N - n0,
        [&](int col, float acc) { return n0 + col < prob.N ? prob.stored(n0 + col, acc) : 0.f; },
        [&](int row, int group, float sum, float m2) {
          if (m0 + row < prob.M)
            prob.row_stats(m0 + row, n_tile * MathT::kColGroups + group, sum, m2);
        });
  }
}

// The GEMM. Grid: (M tiles, N tiles, splits of R); split z covers r-tiles
// [z * tiles_per_split, (z + 1) * tiles_per_split). Launch bounds (256, 2): two blocks per SM
// caps registers at 128 per thread (the tensor-core variant needs ~100: 32 accumulators, 10
// fragment words, up to 16 staged values and the gather indices), so the SM holds 16 warps
// to hide the global-load latency.
template <class Problem, Precision P>
__global__ void __launch_bounds__(kThreads, 2)
    conv3d_implicit_gemm(Problem prob, int tiles_per_split) {
  __shared__ __align__(16) SharedTiles smem;
  constexpr int kR = kBKW * kPerWord<P>;
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;
  const int tiles = (prob.R + kR - 1) / kR;
  const int first = blockIdx.z * tiles_per_split;
  const int last = min(tiles, first + tiles_per_split);

  TileCopy<P, kBM, Problem::kAContigK> ca;
  TileCopy<P, kBN, Problem::kBContigK> cb;
  // A problem whose A rows need set-up (the forward's split of a row into a pixel) does it
  // once per thread: with A's units along r a thread loads the same row in every tile
  // (kThreads is a multiple of kBM), so only r changes from tile to tile.
  constexpr bool kRowCache = requires(const Problem& q) {
    q.a_row(0);
  };
  static_assert(!kRowCache || (Problem::kAContigK && kThreads % kBM == 0));
  auto a_row = [&] {
    if constexpr (kRowCache) {
      return prob.a_row(m0 + threadIdx.x % kBM);
    } else {
      return 0;
    }
  }();
  auto load_a = [&](int m, int r, float* v) {
    if constexpr (kRowCache) {
      prob.load_a_row(a_row, r, v);
    } else {
      prob.load_a(m, r, v);
    }
  };
  auto load_b = [&](int n, int r, float* v) { prob.load_b(r, n, v); };
  Math<P> math;

  if (first < last) {
    ca.fetch(m0, first * kR, load_a);
    cb.fetch(n0, first * kR, load_b);
    ca.stash(smem.a[0]);
    cb.stash(smem.b[0]);
    __syncthreads();
  }
  for (int tile = first, stage = 0; tile < last; ++tile, stage ^= 1) {
    const bool more = tile + 1 < last;
    if (more) {
      ca.fetch(m0, (tile + 1) * kR, load_a);
      cb.fetch(n0, (tile + 1) * kR, load_b);
    }
    math.step(smem.a[stage], smem.b[stage]);
    if (more) {
      ca.stash(smem.a[stage ^ 1]);
      cb.stash(smem.b[stage ^ 1]);
    }
    __syncthreads();
  }
  epilogue(prob, math, m0, n0, blockIdx.y, blockIdx.z);
}

// Column groups per 64-column tile in the row statistics of precision p, and their width
// (see row_sums).
inline int row_stat_groups_per_tile(Precision p) {
  return p == Precision::fp32 ? FfmaMath::kColGroups : TensorCoreMath<Precision::tf32>::kColGroups;
}
inline int row_stat_group_width(Precision p) {
  return p == Precision::fp32 ? FfmaMath::kColGroupWidth
                              : TensorCoreMath<Precision::tf32>::kColGroupWidth;
}

// ---- the gathers shared by the passes -----------------------------------------------------

// One 16-byte load of 4 consecutive floats; the caller guarantees the alignment (the
// contiguous extent is a multiple of 4 and the base comes from cudaMalloc).
__device__ inline void load4(const float* p, int offset, float* v) {
  const float4 q = __ldg(reinterpret_cast<const float4*>(p + offset));
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}

__device__ inline void zero4(float* v) {
  v[0] = v[1] = v[2] = v[3] = 0.f;
}

}  // namespace cu3d::cuda::igemm
