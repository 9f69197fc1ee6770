// The forward conv3d's GEMM problems, one per epilogue: what conv3d_fwd.cu launches on versions
// 2-6 and what the host emulation of the wgmma kernels (tests/emulation) runs. Device code and
// the host's set-up of each problem; no launches.
//
//   y (M = n*od*oh*ow, N = k) = sum over r < R = taps*c of A(m, r) * B(r, n)
//   A(m, r) = x[pixel m shifted by tap r / c, channel r % c]   (zero in the padding)
//   B(r, n) = w[n * R + r]                                     (filters are rows of R)
// Both operands are contiguous along r, so the 4-element load units run along r; with
// c % 4 == 0 a unit never crosses a tap and is one 16-byte load.
//
// One gather, three epilogues (the fused blocks of DESIGN.md):
//   StoreOut     y = conv + bias, optionally ReLU                   (conv3d_fwd, _bias_relu)
//   PoolRowsOut  relu(conv + bias) into the max-pool that follows, by shuffles over
//                window-major rows, for pools that tile the output
//                (conv3d_fwd_bias_relu_maxpool, inference)
//   StatsOut     y = conv + bias and per-row sums for layer-norm statistics
//                (conv3d_fwd_bias_ln_stats)
#pragma once

#include <cstdint>

#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/shapes.h"

namespace cu3d::cuda::fwd {

using namespace igemm;

// The forward gathers; `Out` is the epilogue, called with the biased value of (m, n).
template <class Out>
struct FwdProblem {
  static constexpr bool kAContigK = true;
  static constexpr bool kBContigK = true;
  Geometry g;
  int M, N, R;
  const float* x;
  const float* w;
  const float* bias;
  bool vec_a, vec_b;
  Out out;

  // Row m of A as the gathers need it: its output pixel, split once per thread (see the
  // GEMM kernel's row cache), and the last tap gathered with its input offset (-1: in the
  // padding). A thread's units of one tile share their tap whenever c is a multiple of the
  // tile's r extent (16 or 32: C3D's conv2a-conv5b), so the tap split and the bounds checks
  // run once per tile instead of once per unit; across the warp r is uniform, so the branch
  // does not diverge.
  struct ARow {
    Pixel o;
    bool valid;
    int tap, offset;
  };
  __device__ ARow a_row(int m) const {
    if constexpr (requires(const Out& o) { o.pixel_of(0); }) {
      return {out.pixel_of(m), m < M, -1, -1};
    } else {
      return {split_pixel(m, g.div_od, g.div_oh, g.div_ow), m < M, -1, -1};
    }
  }

  __device__ void load_a_row(ARow& row, int r, float* v) const {
    if (!row.valid) return zero4(v);
    const Pixel& o = row.o;
    if (vec_a) {
      if (r >= R) return zero4(v);
      uint32_t c;
      const int tap = int(g.div_c.divmod(r, &c));
      if (tap != row.tap) row.tap = tap, row.offset = input_offset(g, o, split_tap(tap, g));
      return row.offset < 0 ? zero4(v) : load4(x, row.offset + c, v);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      uint32_t c;
      const int off = r + e < R ? input_offset(g, o, split_tap(g.div_c.divmod(r + e, &c), g)) : -1;
      v[e] = off < 0 ? 0.f : __ldg(x + off + c);
    }
  }

  __device__ void load_b(int r, int n, float* v) const {
    if (n >= N) return zero4(v);
    if (vec_b) return r < R ? load4(w, n * R + r, v) : zero4(v);
#pragma unroll
    for (int e = 0; e < 4; ++e)
      v[e] = r + e < R ? __ldg(w + n * R + r + e) : 0.f;
  }

  // conv + bias: what every epilogue starts from.
  __device__ float stored(int n, float acc) const {
    return bias ? acc + __ldg(bias + n) : acc;
  }

  __device__ void store(int m, int n, float acc, int) const {
    out(*this, m, n, stored(n, acc));
  }
};

struct StoreOut {
  float* y;
  bool relu;
  template <class Prob>
  __device__ void operator()(const Prob& prob, int m, int n, float v) const {
    y[int64_t(m) * prob.N + n] = relu ? fmaxf(v, 0.f) : v;
  }
};

// Inference pooling without atomics, for pools whose windows tile the conv's output exactly
// (stride = window, no padding, C3D's pool1-pool4): the GEMM's rows are put in window-major
// order, row m = (pooled position m / win, offset m % win within its window), so each window
// is `win` consecutive rows of one tile and the kernel reduces them with shuffles
// (window_max); one lane writes each pooled output. The gather reads the pixel of each row
// through pixel_of, once per thread, so the reordering costs the main loop nothing.
struct PoolRowsOut {
  float* pooled;
  int win;  // window.d * window.h * window.w: 4 or 8
  Dims3 window;
  FastDiv div_win, div_win_w, div_win_h;  // offset within a window -> (dz, dy, dx)
  FastDiv div_pw, div_ph, div_pd;         // pooled position -> (n, pz, py, px)

  __device__ Pixel pixel_of(int m) const {
    uint32_t e;
    const uint32_t q = div_win.divmod(m, &e);
    const Pixel p = split_pixel(q, div_pd, div_ph, div_pw);
    uint32_t ex, ey;
    const uint32_t ez = div_win_h.divmod(div_win_w.divmod(e, &ex), &ey);
    return {p.n, p.z * window.d + int(ez), p.y * window.h + int(ey), p.x * window.w + int(ex)};
  }
  template <class Prob>
  __device__ void operator()(const Prob&, int, int, float) const {}
};

struct FwdPoolRowsProblem : FwdProblem<PoolRowsOut> {
  __device__ int window_rows() const { return out.win; }
  __device__ void pool_window(int m, int n, float v) const {
    out.pooled[int64_t(out.div_win.div(m)) * N + n] = fmaxf(v, 0.f);
  }
};
static_assert(requires(const FwdPoolRowsProblem& q) { q.pool_window(0, 0, 0.f); });

// The window-major rows of pool `p` into `pooled`.
inline PoolRowsOut pool_rows_out(const Pool3dShape& p, float* pooled) {
  PoolRowsOut out;
  out.pooled = pooled;
  out.win = p.window.d * p.window.h * p.window.w;
  out.window = p.window;
  out.div_win = FastDiv(out.win);
  out.div_win_w = FastDiv(p.window.w);
  out.div_win_h = FastDiv(p.window.h);
  out.div_pw = FastDiv(p.out.w);
  out.div_ph = FastDiv(p.out.h);
  out.div_pd = FastDiv(p.out.d);
  return out;
}

// y = conv + bias, and (through row_stats, called by the GEMM kernel after the stores) the
// sum and the centred sum of squares of each output row over each column group of each tile:
// row_sums[m * groups + group].
struct StatsOut {
  float* y;
  float2* row_sums;
  int groups;
  template <class Prob>
  __device__ void operator()(const Prob& prob, int m, int n, float v) const {
    y[int64_t(m) * prob.N + n] = v;
  }
};

struct FwdStatsProblem : FwdProblem<StatsOut> {
  __device__ void row_stats(int m, int group, float sum, float m2) const {
    out.row_sums[int64_t(m) * out.groups + group] = make_float2(sum, m2);
  }
};
// The GEMM kernel detects the statistics epilogue by this expression; keep them in step.
static_assert(requires(const FwdStatsProblem& q) { q.row_stats(0, 0, 0.f, 0.f); });

// Sets the GEMM of conv `s` in `prob`: the geometry, M, N, R and the gathers' vector widths.
// `op` names the op in errors.
template <class Problem>
void set_gemm_shape(Problem& prob, const Conv3dShape& s, const char* op) {
  prob.g = make_geometry(s, op);
  prob.M = s.n * s.out.d * s.out.h * s.out.w;
  prob.N = s.k;
  prob.R = prob.g.taps * s.c;
  prob.vec_a = s.c % 4 == 0;
  prob.vec_b = prob.R % 4 == 0;
}

// The problem of conv `s` on x, w and bias; the caller sets its `out`.
template <class Problem>
Problem make_problem(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                     const char* op) {
  Problem prob;
  set_gemm_shape(prob, s, op);
  prob.x = x, prob.w = w, prob.bias = bias;
  return prob;
}

}  // namespace cu3d::cuda::fwd
