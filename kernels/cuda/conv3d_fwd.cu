// Forward conv3d as an implicit GEMM (version 2; see conv3d_igemm.cuh):
//   y (M = n*od*oh*ow, N = k) = sum over r < R = taps*c of A(m, r) * B(r, n)
//   A(m, r) = x[pixel m shifted by tap r / c, channel r % c]   (zero in the padding)
//   B(r, n) = w[n * R + r]                                     (filters are rows of R)
// Both operands are contiguous along r, so the 4-element load units run along r; with
// c % 4 == 0 a unit never crosses a tap and is one 16-byte load.
//
// Version 3 (conv3d_pipelined.cuh) runs the same problems, epilogues included, with a
// cp.async pipeline and ldmatrix fragments where the shape allows and the caller asks for it;
// version 4 (conv3d_wide.cuh) those whose epilogue stores each output, on a wider tile;
// version 5 (conv3d_wgmma.cuh) all of them on version 4's tile, with the math on Hopper's wgmma.
//
// One gather, three epilogues (the fused blocks of DESIGN.md):
//   StoreOut   y = conv + bias, optionally ReLU                (conv3d_fwd, _bias_relu)
//   PoolOut    relu(conv + bias) into the max-pool that follows (conv3d_fwd_bias_relu_maxpool,
//              inference)
//   StatsOut   y = conv + bias and per-row sums for layer-norm statistics
//              (conv3d_fwd_bias_ln_stats)
#include <fmt/format.h>

#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/cuda/conv3d_pipelined.cuh"
#include "kernels/cuda/conv3d_wgmma.cuh"
#include "kernels/cuda/conv3d_wgmma_ws.cuh"
#include "kernels/cuda/conv3d_wide.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/pool3d.cuh"

namespace cu3d::cuda {
namespace {

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

// relu(v) into the max of every pool window that contains output position m (inference with
// windows that do not tile the output). A ReLU output is >= 0, and non-negative floats order as
// their bit patterns read as ints, so an integer atomicMax on a pooled output zeroed beforehand
// computes the float max; the result does not depend on the order of the atomics
// (deterministic).
struct PoolOut {
  Pool3dShape p;
  float* pooled;
  template <class Prob>
  __device__ void operator()(const Prob& prob, int m, int n, float v) const {
    v = fmaxf(v, 0.f);
    // Zero is the initial max: a zero (or negative zero) output changes nothing.
    if (__float_as_int(v) <= 0) return;
    const Pixel o = split_pixel(m, prob.g.div_od, prob.g.div_oh, prob.g.div_ow);
    // Window o covers inputs [o * stride - pad, o * stride - pad + window): the windows that
    // contain i are ceil((i + pad - window + 1) / stride) .. floor((i + pad) / stride).
    auto range = [](int i, int pad, int window, int stride, int out, int* lo, int* hi) {
      const int a = i + pad - window + 1;
      *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
      *hi = min((i + pad) / stride, out - 1);
    };
    int d0, d1, h0, h1, w0, w1;
    range(o.z, p.pad_before.d, p.window.d, p.stride.d, p.out.d, &d0, &d1);
    range(o.y, p.pad_before.h, p.window.h, p.stride.h, p.out.h, &h0, &h1);
    range(o.x, p.pad_before.w, p.window.w, p.stride.w, p.out.w, &w0, &w1);
    const int bits = __float_as_int(v);
    for (int od = d0; od <= d1; ++od)
      for (int oh = h0; oh <= h1; ++oh)
        for (int ow = w0; ow <= w1; ++ow) {
          const int64_t q = ((int64_t(o.n) * p.out.d + od) * p.out.h + oh) * p.out.w + ow;
          atomicMax(reinterpret_cast<int*>(pooled + q * prob.N + n), bits);
        }
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

}  // namespace

bool conv3d_pool_windows_tile_output(const Pool3dShape& p) {
  const int win = p.window.d * p.window.h * p.window.w;
  return (win == 4 || win == 8) && p.stride == p.window && p.pad_before == Dims3{0, 0, 0} &&
         p.pad_after == Dims3{0, 0, 0} && p.in.d == p.out.d * p.window.d &&
         p.in.h == p.out.h * p.window.h && p.in.w == p.out.w * p.window.w;
}

namespace {

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

std::string describe(const char* op, const Conv3dShape& s, Precision p) {
  return fmt::format("{} (x {}x{}x{}x{}x{}, k {}, kernel {}x{}x{}, {})", op, s.n, s.in.d, s.in.h,
                     s.in.w, s.c, s.k, s.kernel.d, s.kernel.h, s.kernel.w, to_string(p));
}

template <class Problem>
Problem make_problem(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                     const char* op) {
  Problem prob;
  prob.g = make_geometry(s, op);
  prob.M = s.n * s.out.d * s.out.h * s.out.w;
  prob.N = s.k;
  prob.R = prob.g.taps * s.c;
  prob.x = x, prob.w = w, prob.bias = bias;
  prob.vec_a = s.c % 4 == 0;
  prob.vec_b = prob.R % 4 == 0;
  return prob;
}

template <class Problem, Precision P>
void launch_pipelined(const Problem& prob, const void* x, const void* w, cudaStream_t stream) {
  const auto kernel = pipelined::conv3d_fwd_pipelined<Problem, P>;
  allow_shared_memory(kernel, pipelined::kSharedBytes);  // two blocks of 99 KB per SM
  const dim3 grid((prob.N + pipelined::kBN - 1) / pipelined::kBN,
                  (prob.M + pipelined::kBM - 1) / pipelined::kBM);
  kernel<<<grid, pipelined::kThreads, pipelined::kSharedBytes, stream>>>(prob, x, w);
}

// Version 4: as version 3, on its own tile and with 192 KB of dynamic shared memory.
template <class Problem, Precision P>
void launch_wide(const Problem& prob, const void* x, const void* w, cudaStream_t stream) {
  namespace wide = pipelined::wide;
  const auto kernel = wide::conv3d_fwd_wide<Problem, P>;
  allow_shared_memory(kernel, wide::kSharedBytes);
  const dim3 grid((prob.N + wide::kBN - 1) / wide::kBN, (prob.M + wide::kBM - 1) / wide::kBM);
  kernel<<<grid, pipelined::kThreads, wide::kSharedBytes, stream>>>(prob, x, w);
}

// Version 5 on `Tile` (or version 6, its warp-specialized form, with `specialized`), with 1 KB
// more shared memory than its ring (to align its base to 1 KB).
template <class Problem, Precision P, class Tile, bool kSpecialized>
void launch_wgmma_tile(const Problem& prob, const void* x, const void* w, cudaStream_t stream) {
  namespace wgmma = pipelined::wgmma;
  const auto kernel = kSpecialized ? wgmma::conv3d_fwd_wgmma_ws<Problem, P, Tile>
                                   : wgmma::conv3d_fwd_wgmma<Problem, P, Tile>;
  allow_shared_memory(kernel, Tile::kSharedBytes);
  const dim3 grid((prob.N + Tile::kBN - 1) / Tile::kBN, (prob.M + Tile::kBM - 1) / Tile::kBM);
  const int threads = kSpecialized ? wgmma::kWsThreads : pipelined::kThreads;
  kernel<<<grid, threads, Tile::kSharedBytes, stream>>>(prob, x, w);
}

// Versions 5 and 6: 256-row tiles, or 128-row ones where the 256-row grid would leave SMs idle
// (one block per SM either way).
template <class Problem, Precision P, bool kSpecialized>
void launch_wgmma(const Problem& prob, const void* x, const void* w, cudaStream_t stream) {
  using pipelined::wgmma::ShortTile, pipelined::wgmma::TallTile;
  if (pipelined::wgmma::use_short_tile(prob.M, prob.N, multiprocessor_count())) {
    launch_wgmma_tile<Problem, P, ShortTile, kSpecialized>(prob, x, w, stream);
  } else {
    launch_wgmma_tile<Problem, P, TallTile, kSpecialized>(prob, x, w, stream);
  }
}

// How the cp.async-fed versions take tf32 operands: as fp32 (versions 3 and 4 round them in
// registers) or rounded to tf32 in memory first (version 5, whose tensor cores read them from
// shared memory and would truncate).
enum class Tf32Operands { as_is, rounded };

// Launches precision P on copies of x and w that `convert` writes into stream-ordered workspace
// of T.
template <Precision P, class T, class Problem, class Convert, class Launch>
void launch_on_copies(const Problem& prob, const Conv3dShape& s, cudaStream_t stream,
                      Convert convert, Launch launch) {
  auto* xc = static_cast<T*>(malloc_async(sizeof(T) * s.input_size(), stream));
  auto* wc = static_cast<T*>(malloc_async(sizeof(T) * s.filter_size(), stream));
  convert(prob.x, xc, s.input_size(), stream);
  convert(prob.w, wc, s.filter_size(), stream);
  launch(std::integral_constant<Precision, P>(), xc, wc);
  free_async(xc, stream);
  free_async(wc, stream);
}

// Versions 3-5 (`Launch<Precision>` launches one): bf16 converts x and w to bf16 first
// (stream-ordered workspace of 2 bytes per element), since cp.async copies bytes as they are;
// tf32 rounds them into workspace of 4 bytes per element where `tf32` asks for it.
template <class Problem, class Launch>
void run_converted(const Problem& prob, const Conv3dShape& s, Precision p, cudaStream_t stream,
                   const std::string& what, Launch launch,
                   Tf32Operands tf32 = Tf32Operands::as_is) {
  if (p == Precision::bf16) {
    launch_on_copies<Precision::bf16, __nv_bfloat16>(prob, s, stream, fp32_to_bf16, launch);
  } else if (tf32 == Tf32Operands::rounded) {
    launch_on_copies<Precision::tf32, float>(prob, s, stream, fp32_to_tf32, launch);
  } else {
    launch(std::integral_constant<Precision, Precision::tf32>(), prob.x, prob.w);
  }
  check_launch(what);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Runs the version `kernel` asks for where it takes the shape, else the next one down
// (4 -> 3 -> 2, 5 and 6 -> 3 -> 2).
template <class Problem>
void run(const Problem& prob, const Conv3dShape& s, const char* op, Precision p, ConvKernel kernel,
         cudaStream_t stream) {
  const std::string what = describe(op, s, p);
  const bool aligned = aligned16(prob.x) && aligned16(prob.w);
  if ((kernel == ConvKernel::wgmma || kernel == ConvKernel::wgmma_ws) &&
      conv3d_fwd_wgmma_supports(s, p) && aligned) {
    run_converted(
        prob, s, p, stream, what,
        [&](auto precision, const void* x, const void* w) {
          constexpr Precision kP = decltype(precision)::value;
          if (kernel == ConvKernel::wgmma_ws)
            launch_wgmma<Problem, kP, true>(prob, x, w, stream);
          else
            launch_wgmma<Problem, kP, false>(prob, x, w, stream);
        },
        Tf32Operands::rounded);
    return;
  }
  if constexpr (pipelined::wide::kStoresEachOutput<Problem>) {
    if (kernel == ConvKernel::wide && conv3d_fwd_wide_supports(s, p) && aligned) {
      run_converted(prob, s, p, stream, what, [&](auto precision, const void* x, const void* w) {
        launch_wide<Problem, decltype(precision)::value>(prob, x, w, stream);
      });
      return;
    }
  }
  if (kernel != ConvKernel::implicit_gemm && conv3d_fwd_pipelined_supports(s, p) && aligned) {
    run_converted(prob, s, p, stream, what, [&](auto precision, const void* x, const void* w) {
      launch_pipelined<Problem, decltype(precision)::value>(prob, x, w, stream);
    });
    return;
  }
  run_implicit_gemm(prob, p, plan_splits(prob.R, p, 1, false), stream, what);
}

void run_store(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
               bool relu, Precision p, ConvKernel kernel, cudaStream_t stream) {
  const char* op = relu ? "conv3d_fwd_bias_relu" : "conv3d_fwd";
  auto prob = make_problem<FwdProblem<StoreOut>>(s, x, w, bias, op);
  prob.out = {y, relu};
  run(prob, s, op, p, kernel, stream);
}

// The pool must read the conv's output and have a valid element in every window (the rule of
// maxpool3d_fwd), which is what makes zero the right initial max.
void check_pool(const Conv3dShape& s, const Pool3dShape& p, const std::string& what) {
  CU3D_CHECK(p.n == s.n && p.c == s.k && p.in == s.out,
             "{}: the pool's input {}x{}x{}x{}x{} is not the conv's output {}x{}x{}x{}x{}", what,
             p.n, p.in.d, p.in.h, p.in.w, p.c, s.n, s.out.d, s.out.h, s.out.w, s.k);
  auto axis_ok = [](int in, int window, int stride, int pad, int out) {
    return window - pad > 0 && (out - 1) * stride - pad < in;
  };
  CU3D_CHECK(axis_ok(p.in.d, p.window.d, p.stride.d, p.pad_before.d, p.out.d) &&
                 axis_ok(p.in.h, p.window.h, p.stride.h, p.pad_before.h, p.out.h) &&
                 axis_ok(p.in.w, p.window.w, p.stride.w, p.pad_before.w, p.out.w),
             "{}: some pool window lies entirely in the padding; use less padding", what);
}

}  // namespace

bool conv3d_fwd_pipelined_supports(const Conv3dShape& s, Precision precision) {
  if (precision == Precision::fp32) return false;
  const int per_row = pipelined::kRowBytes / (precision == Precision::bf16 ? 2 : 4);
  const int64_t m_tiles =
      (int64_t(s.n) * s.out.d * s.out.h * s.out.w + pipelined::kBM - 1) / pipelined::kBM;
  return s.c % per_row == 0 && m_tiles <= 65535;  // grid.y's limit
}

bool conv3d_fwd_wide_supports(const Conv3dShape& s, Precision precision) {
  // Version 3's limit of 65535 tiles of 128 rows bounds version 4's tiles of 256 as well.
  return conv3d_fwd_pipelined_supports(s, precision);
}

bool wgmma_available(std::string* why) {
#if defined(CU3D_WGMMA)
  const ComputeCapability cc = compute_capability();
  if (cc.major == 9 && cc.minor == 0) return true;
  if (why)
    *why = cc.major < 0 ? std::string("no CUDA device")
                        : fmt::format(
                              "wgmma needs compute capability 9.0 (sm_90a); the device is "
                              "{}.{}",
                              cc.major, cc.minor);
  return false;
#else
  if (why) *why = "this build has no sm_90a code (configure with CMAKE_CUDA_ARCHITECTURES=90a)";
  return false;
#endif
}

bool conv3d_fwd_wgmma_supports(const Conv3dShape& s, Precision precision) {
  return conv3d_fwd_wide_supports(s, precision) && wgmma_available();
}

void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream, ConvKernel kernel) {
  run_store(s, x, w, bias, y, false, precision, kernel, stream);
}

void conv3d_fwd_bias_relu(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Precision precision, cudaStream_t stream, ConvKernel kernel) {
  run_store(s, x, w, bias, y, true, precision, kernel, stream);
}

void conv3d_fwd_bias_relu_maxpool(const Conv3dShape& s, const Pool3dShape& p, const float* x,
                                  const float* w, const float* bias, float* pooled, float* z,
                                  Precision precision, cudaStream_t stream, ConvKernel kernel) {
  const char* op = "conv3d_fwd_bias_relu_maxpool";
  check_pool(s, p, describe(op, s, precision));
  if (!z && conv3d_pool_windows_tile_output(p)) {
    auto prob = make_problem<FwdPoolRowsProblem>(s, x, w, bias, op);
    prob.out.pooled = pooled;
    prob.out.win = p.window.d * p.window.h * p.window.w;
    prob.out.window = p.window;
    prob.out.div_win = FastDiv(prob.out.win);
    prob.out.div_win_w = FastDiv(p.window.w);
    prob.out.div_win_h = FastDiv(p.window.h);
    prob.out.div_pw = FastDiv(p.out.w);
    prob.out.div_ph = FastDiv(p.out.h);
    prob.out.div_pd = FastDiv(p.out.d);
    run(prob, s, op, precision, kernel, stream);
    return;
  }
  if (z) {
    // Training writes z anyway: the pool reads it back (maxpool3d_fwd, 4 channels per thread,
    // 60-77 % of copy bandwidth on C3D's pools) instead of an atomicMax per conv output. On an
    // H200 the atomics made C3D's fused bf16 training step slower than the unfused chain's
    // (87.0 against 78.6 ms per step, which also runs ReLU as a pass of its own). Same values:
    // a max is exact in any order.
    run_store(s, x, w, bias, z, true, precision, kernel, stream);
    maxpool3d_fwd(p, z, pooled, stream);
    return;
  }
  CU3D_CUDA_CHECK(cudaMemsetAsync(pooled, 0, sizeof(float) * p.output_size(), stream));
  auto prob = make_problem<FwdProblem<PoolOut>>(s, x, w, bias, op);
  prob.out = {p, pooled};
  run(prob, s, op, precision, kernel, stream);
}

void conv3d_fwd_bias_ln_stats(const Conv3dShape& s, const float* x, const float* w,
                              const float* bias, int64_t positions_per_group, float eps, float* y,
                              float* mean, float* rstd, Precision precision, cudaStream_t stream,
                              ConvKernel kernel) {
  const char* op = "conv3d_fwd_bias_ln_stats";
  const std::string what = describe(op, s, precision);
  const int64_t positions = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  CU3D_CHECK(positions_per_group > 0 && positions % positions_per_group == 0,
             "{}: groups of {} positions do not tile the {} output positions", what,
             positions_per_group, positions);
  // Groups of version 2's and 3's 64-column tiles; version 5's 128-column tile writes only the
  // groups with a valid column (GroupMath::row_sums), so k = 64 (2 groups) fits too.
  const int groups = (s.k + kBN - 1) / kBN * row_stat_groups_per_tile(precision);
  auto* row_sums = static_cast<float2*>(malloc_async(sizeof(float2) * positions * groups, stream));
  auto prob = make_problem<FwdStatsProblem>(s, x, w, bias, op);
  prob.out = {y, row_sums, groups};
  run(prob, s, op, precision, kernel, stream);
  layer_norm_stats_from_row_sums(positions / positions_per_group, positions_per_group, groups, s.k,
                                 row_stat_group_width(precision), row_sums, eps, mean, rstd,
                                 stream);
  free_async(row_sums, stream);
}

}  // namespace cu3d::cuda
