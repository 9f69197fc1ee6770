// Forward conv3d as an implicit GEMM: the problems and their epilogues are in
// conv3d_fwd_problems.cuh; this file picks the kernel version for each call and launches it.
//
// Version 2 (conv3d_igemm.cuh) runs every shape. Version 3 (conv3d_pipelined.cuh) runs the same
// problems, epilogues included, with a cp.async pipeline and ldmatrix fragments where the shape
// allows and the caller asks for it; version 4 (conv3d_wide.cuh) those whose epilogue stores
// each output, on a wider tile; version 5 (conv3d_wgmma.cuh) all of them on version 4's tile,
// with the math on Hopper's wgmma; version 6 (conv3d_wgmma_ws.cuh) version 5 warp-specialized;
// version 7 (conv3d_wgmma_tma.cuh) version 6 fed by the TMA, for the epilogues that keep the
// rows in order; version 8 (conv3d_wgmma_cluster.cuh) version 7 in clusters of two blocks that
// share an operand tile. In fp32, versions 5-8 run three tf32 products (3xTF32) and version 3 has
// an FFMA form (conv3d_pipelined_ffma.cuh).
#include <algorithm>

#include <fmt/format.h>

#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/cluster_launch.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/conv3d_fwd_problems.cuh"
#include "kernels/cuda/conv3d_igemm_launch.cuh"
#include "kernels/cuda/conv3d_pipelined.cuh"
#include "kernels/cuda/conv3d_pipelined_ffma.cuh"
#include "kernels/cuda/conv3d_wgmma.cuh"
#include "kernels/cuda/conv3d_wgmma_cluster.cuh"
#include "kernels/cuda/conv3d_wgmma_tma.cuh"
#include "kernels/cuda/conv3d_wgmma_ws.cuh"
#include "kernels/cuda/conv3d_wide.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/pool3d.cuh"

namespace cu3d::cuda {

bool conv3d_pool_windows_tile_output(const Pool3dShape& p) {
  const int win = p.window.d * p.window.h * p.window.w;
  return (win == 4 || win == 8) && p.stride == p.window && p.pad_before == Dims3{0, 0, 0} &&
         p.pad_after == Dims3{0, 0, 0} && p.in.d == p.out.d * p.window.d &&
         p.in.h == p.out.h * p.window.h && p.in.w == p.out.w * p.window.w;
}

namespace {

using namespace fwd;

std::string describe(const char* op, const Conv3dShape& s, Precision p) {
  return fmt::format("{} (x {}x{}x{}x{}x{}, k {}, kernel {}x{}x{}, {})", op, s.n, s.in.d, s.in.h,
                     s.in.w, s.c, s.k, s.kernel.d, s.kernel.h, s.kernel.w, to_string(p));
}

template <class Problem, Precision P>
void launch_pipelined(const Problem& prob, const void* x, const void* w, cudaStream_t stream) {
  const auto kernel = pipelined::conv3d_fwd_pipelined<Problem, P>;
  allow_shared_memory(kernel, pipelined::kSharedBytes);  // two blocks of 99 KB per SM
  const dim3 grid((prob.N + pipelined::kBN - 1) / pipelined::kBN,
                  (prob.M + pipelined::kBM - 1) / pipelined::kBM);
  kernel<<<grid, pipelined::kThreads, pipelined::kSharedBytes, stream>>>(prob, x, w);
}

// Version 3's fp32 form: FFMA on 128 x 128 tiles, 128 KB of dynamic shared memory.
template <class Problem>
void launch_pipelined_ffma(const Problem& prob, cudaStream_t stream) {
  namespace ffma = pipelined::ffma;
  const auto kernel = ffma::conv3d_fwd_pipelined_ffma<Problem>;
  allow_shared_memory(kernel, ffma::kSharedBytes);
  const dim3 grid((prob.N + ffma::kBN - 1) / ffma::kBN, (prob.M + ffma::kBM - 1) / ffma::kBM);
  kernel<<<grid, pipelined::kThreads, ffma::kSharedBytes, stream>>>(prob);
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

// Calls launch(tile) with the tile versions 5-8 take for `prob`: 256 rows, or 128 where the
// 256-row grid would leave SMs idle (one block per SM either way).
template <class Problem, class Launch>
void with_wgmma_tile(const Problem& prob, Launch launch) {
  if (pipelined::wgmma::use_short_tile(prob.M, prob.N, multiprocessor_count())) {
    launch(pipelined::wgmma::ShortTile{});
  } else {
    launch(pipelined::wgmma::TallTile{});
  }
}

// Versions 5 and 6.
template <class Problem, Precision P, bool kSpecialized>
void launch_wgmma(const Problem& prob, const void* x, const void* w, cudaStream_t stream) {
  with_wgmma_tile(prob, [&](auto tile) {
    launch_wgmma_tile<Problem, P, decltype(tile), kSpecialized>(prob, x, w, stream);
  });
}

// Version 7 on `Tile`: the tensor maps of x and w (in the compute type), then the launch.
template <class Problem, Precision P, class Tile>
void launch_tma_tile(const Problem& prob, const Conv3dShape& s, const void* x, const void* w,
                     cudaStream_t stream, const std::string& what) {
  namespace wgmma = pipelined::wgmma;
  const wgmma::TmaMaps maps =
      wgmma::conv_tma_maps<Tile>(s, x, w, P == Precision::bf16 ? 2 : 4, what);
  const auto kernel = wgmma::conv3d_fwd_wgmma_tma<Problem, P, Tile>;
  allow_shared_memory(kernel, Tile::kSharedBytes);
  // Persistent: one block per SM (its shared memory allows no second), each looping over tiles.
  const int64_t tiles =
      int64_t((prob.N + Tile::kBN - 1) / Tile::kBN) * ((prob.M + Tile::kBM - 1) / Tile::kBM);
  const int blocks = int(std::min<int64_t>(tiles, multiprocessor_count()));
  kernel<<<blocks, wgmma::kWsThreads, Tile::kSharedBytes, stream>>>(prob, maps);
}

// Version 7, on the tile version 5 would take.
template <class Problem, Precision P>
void launch_tma(const Problem& prob, const Conv3dShape& s, const void* x, const void* w,
                cudaStream_t stream, const std::string& what) {
  with_wgmma_tile(prob, [&](auto tile) {
    launch_tma_tile<Problem, P, decltype(tile)>(prob, s, x, w, stream, what);
  });
}

// Version 8 on `Tile` sharing tile `S`: version 7's maps with boxes of half the shared tile, then
// a persistent grid of as many clusters of two as run at once (at most one per unit of work).
template <class Problem, Precision P, class Tile, pipelined::wgmma::ClusterShare S>
void launch_cluster_tile(const Problem& prob, const Conv3dShape& s, const void* x, const void* w,
                         cudaStream_t stream, const std::string& what) {
  namespace wgmma = pipelined::wgmma;
  const wgmma::TmaMaps maps =
      wgmma::conv_cluster_maps<Tile, S>(s, x, w, P == Precision::bf16 ? 2 : 4, what);
  const auto kernel = wgmma::conv3d_fwd_wgmma_cluster<Problem, P, Tile, S>;
  constexpr int kShared = wgmma::kClusterSharedBytes<Tile>;
  allow_shared_memory(kernel, kShared);
  const int units = wgmma::ClusterTiles<Tile, S>(prob.M, prob.N).count;
  const int fit = max_active_clusters(kernel, wgmma::kWsThreads, kShared, wgmma::kClusterBlocks);
  CU3D_CHECK(fit > 0, "{}: no cluster of two blocks of {} bytes of shared memory fits the device",
             what, kShared);
  const int clusters = std::min(units, fit);
  launch_in_clusters(kernel, clusters * wgmma::kClusterBlocks, wgmma::kWsThreads, kShared, stream,
                     wgmma::kClusterBlocks, prob, maps);
}

// Version 8 on the tile version 5 would take, sharing A where the N tiles pair up, else B.
template <class Problem, Precision P>
void launch_cluster(const Problem& prob, const Conv3dShape& s, const void* x, const void* w,
                    cudaStream_t stream, const std::string& what) {
  namespace wgmma = pipelined::wgmma;
  with_wgmma_tile(prob, [&](auto tile) {
    using Tile = decltype(tile);
    if (wgmma::cluster_share(prob.N) == wgmma::ClusterShare::a_tile)
      launch_cluster_tile<Problem, P, Tile, wgmma::ClusterShare::a_tile>(prob, s, x, w, stream,
                                                                         what);
    else
      launch_cluster_tile<Problem, P, Tile, wgmma::ClusterShare::b_tile>(prob, s, x, w, stream,
                                                                         what);
  });
}

// Whether a problem's GEMM rows are the output positions in order, as an im2col load walks them
// (the inference pool block's window-major rows are not).
template <class Problem>
constexpr bool kRowsInOrder = !requires(const Problem& q) {
  q.out.pixel_of(0);
};

// How the cp.async-fed versions take tf32 operands: as fp32 (versions 3 and 4 round them in
// registers) or rounded to tf32 in memory first (version 5, whose tensor cores read them from
// shared memory and would truncate).
enum class Tf32Operands { as_is, rounded };

// Launches precision P on copies of x and w in its compute type (compute_copy, cast.cuh).
template <Precision P, class Problem, class Launch>
void launch_on_copies(const Problem& prob, const Conv3dShape& s, cudaStream_t stream,
                      Launch launch) {
  ComputeValue<P>* xc = compute_copy<P>(prob.x, s.input_size(), stream);
  ComputeValue<P>* wc = compute_copy<P>(prob.w, s.filter_size(), stream);
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
    launch_on_copies<Precision::bf16>(prob, s, stream, launch);
  } else if (tf32 == Tf32Operands::rounded) {
    launch_on_copies<Precision::tf32>(prob, s, stream, launch);
  } else {
    launch(std::integral_constant<Precision, Precision::tf32>(), prob.x, prob.w);
  }
  check_launch(what);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Versions 7 and 8 (which runs 7 where it does not apply): the TMA-fed ones.
bool takes_tma(ConvKernel kernel) {
  return kernel == ConvKernel::wgmma_tma || kernel == ConvKernel::wgmma_cluster;
}

// Versions 5-8 on operands already in precision P's form (a shape conv3d_fwd_wgmma_supports
// takes): 8 where asked and it takes the shape and the problem's rows are in order, else 7 where
// asked (or 8 was) and it takes the shape and the rows are in order, else 6 where asked, else 5.
template <class Problem, Precision P>
void launch_wgmma_version(const Problem& prob, const Conv3dShape& s, const void* x, const void* w,
                          ConvKernel kernel, cudaStream_t stream, const std::string& what) {
  if constexpr (kRowsInOrder<Problem>) {
    if (takes_tma(kernel) && conv3d_fwd_wgmma_tma_supports(s, P)) {  // version 8's shapes too
      if (kernel == ConvKernel::wgmma_cluster)
        launch_cluster<Problem, P>(prob, s, x, w, stream, what);
      else
        launch_tma<Problem, P>(prob, s, x, w, stream, what);
      return;
    }
  }
  if (kernel == ConvKernel::wgmma_ws)
    launch_wgmma<Problem, P, true>(prob, x, w, stream);
  else
    launch_wgmma<Problem, P, false>(prob, x, w, stream);
}

// Whether an fp32 conv runs on versions 5-8 as three tf32 products (run_split_tf32).
bool runs_split_tf32(const Conv3dShape& s, Precision p, ConvKernel kernel, const float* x,
                     const float* w) {
  return p == Precision::fp32 && is_wgmma_version(kernel) && conv3d_fwd_wgmma_supports(s, p) &&
         aligned16(x) && aligned16(w);
}

// fp32 on versions 5-8 ("3xTF32"): x and w split into tf32 heads and tails (x = hi + lo within
// 2^-22 |x|), and the tf32 conv of the tripled shape, whose channel blocks pair [hi, lo, hi] of x
// with [hi, hi, lo] of w: per output, hi * hi + lo * hi + hi * lo summed over every tap and
// channel, each product of the fp32 operands but for lo * lo (2^-22 of it) and the tail's
// rounding (2^-22 again). The tensor cores multiply tf32 exactly into fp32 and add in fp32,
// so the error is of fp32's order, as version 2's FFMA's, at a third of tf32's rate.
// The epilogues see only the outputs: the problem keeps its `out` and bias, with the GEMM of
// the tripled shape.
template <class Problem>
void run_split_tf32(const Problem& prob, const Conv3dShape& s, const char* op, ConvKernel kernel,
                    cudaStream_t stream, const std::string& what) {
  const Conv3dShape tripled = conv3d_split_tf32_shape(s);
  Problem split = prob;
  set_gemm_shape(split, tripled, op);
  auto* x3 = static_cast<float*>(malloc_async(sizeof(float) * tripled.input_size(), stream));
  auto* w3 = static_cast<float*>(malloc_async(sizeof(float) * tripled.filter_size(), stream));
  fp32_to_tf32_split(prob.x, x3, s.input_size() / s.c, s.c, Tf32Split::head_tail_head, stream);
  fp32_to_tf32_split(prob.w, w3, s.filter_size() / s.c, s.c, Tf32Split::head_head_tail, stream);
  launch_wgmma_version<Problem, Precision::tf32>(split, tripled, x3, w3, kernel, stream, what);
  check_launch(what);
  free_async(x3, stream);
  free_async(w3, stream);
}

// Runs the version `kernel` asks for where it takes the shape, else the next one down
// (4 -> 3 -> 2, 5 and 6 -> 3 -> 2, 8 -> 7 -> 5 -> 3 -> 2; fp32: 5-8 as 3xTF32 -> 3 -> 2, where 3
// is its FFMA form).
template <class Problem>
void run(const Problem& prob, const Conv3dShape& s, const char* op, Precision p, ConvKernel kernel,
         cudaStream_t stream) {
  const std::string what = describe(op, s, p);
  const bool aligned = aligned16(prob.x) && aligned16(prob.w);
  if (runs_split_tf32(s, p, kernel, prob.x, prob.w)) {
    run_split_tf32(prob, s, op, kernel, stream, what);
    return;
  }
  if (kernel != ConvKernel::implicit_gemm && conv3d_fwd_pipelined_ffma_supports(s, p) && aligned) {
    launch_pipelined_ffma(prob, stream);
    check_launch(what);
    return;
  }
  if (is_wgmma_version(kernel) && conv3d_fwd_wgmma_supports(s, p) && aligned) {
    run_converted(
        prob, s, p, stream, what,
        [&](auto precision, const void* x, const void* w) {
          launch_wgmma_version<Problem, decltype(precision)::value>(prob, s, x, w, kernel, stream,
                                                                    what);
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

bool conv3d_fwd_pipelined_ffma_supports(const Conv3dShape& s, Precision precision) {
  // Version 3's rows of 32 fp32 values and its limit of 65535 tiles of 128 rows.
  return precision == Precision::fp32 && conv3d_fwd_pipelined_supports(s, Precision::tf32);
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
  if (precision == Precision::fp32)
    return conv3d_fwd_wgmma_supports(conv3d_split_tf32_shape(s), Precision::tf32);
  return conv3d_fwd_wide_supports(s, precision) && wgmma_available();
}

Conv3dShape conv3d_split_tf32_shape(const Conv3dShape& s) {
  Conv3dShape tripled = s;
  tripled.c = 3 * s.c;
  return tripled;
}

bool conv3d_fwd_wgmma_cluster_supports(const Conv3dShape& s, Precision precision) {
  return conv3d_fwd_wgmma_tma_supports(s, precision);
}

bool conv3d_fwd_wgmma_tma_supports(const Conv3dShape& s, Precision precision) {
  auto corner_fits = [](int v) { return v >= -16 && v <= 15; };
  auto corners_fit = [&](int pad_before, int pad_after, int kernel) {
    return corner_fits(-pad_before) && corner_fits(pad_after - (kernel - 1));
  };
  return s.stride == Dims3{1, 1, 1} && corners_fit(s.pad_before.d, s.pad_after.d, s.kernel.d) &&
         corners_fit(s.pad_before.h, s.pad_after.h, s.kernel.h) &&
         corners_fit(s.pad_before.w, s.pad_after.w, s.kernel.w) &&
         conv3d_fwd_wgmma_supports(s, precision);
}

void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream, ConvKernel kernel) {
  run_store(s, x, w, bias, y, false, precision, kernel, stream);
}

void conv3d_fwd_prepared(const Conv3dShape& s, const void* x, const void* w, float* y,
                         Precision precision, cudaStream_t stream, ConvKernel kernel) {
  const char* op = "conv3d_fwd_prepared";
  const std::string what = describe(op, s, precision);
  CU3D_CHECK((kernel == ConvKernel::wgmma || takes_tma(kernel)) && precision != Precision::fp32 &&
                 conv3d_fwd_wgmma_supports(s, precision) && aligned16(x) && aligned16(w),
             "{}: takes versions 5, 7 and 8 in bf16 or tf32 on the shapes version 5 takes, 16-byte "
             "aligned operands (fp32: the tf32 conv of conv3d_split_tf32_shape)",
             what);
  // The problem's own x and w are the gathers' of versions 2-4, unused here.
  auto prob = make_problem<FwdProblem<StoreOut>>(s, nullptr, nullptr, nullptr, op);
  prob.out = {y, false};
  if (precision == Precision::bf16)
    launch_wgmma_version<decltype(prob), Precision::bf16>(prob, s, x, w, kernel, stream, what);
  else
    launch_wgmma_version<decltype(prob), Precision::tf32>(prob, s, x, w, kernel, stream, what);
  check_launch(what);
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
  // Version 7 walks the rows in output order, not window by window: it stores z and pools after,
  // which cost version 5 1-4 % over its window-major epilogue (H100, session 9, bf16 at batch
  // 32, ms, window-major against z + pool: conv2a 2.939 / 3.046, conv3b 1.995 / 2.028, conv4b
  // 0.927 / 0.937).
  const bool tma = takes_tma(kernel) && conv3d_fwd_wgmma_tma_supports(s, precision);
  if (!z && !tma && conv3d_pool_windows_tile_output(p)) {
    auto prob = make_problem<FwdPoolRowsProblem>(s, x, w, bias, op);
    prob.out = pool_rows_out(p, pooled);
    run(prob, s, op, precision, kernel, stream);
    return;
  }
  // Training's z, or in inference a scratch z for windows that do not tile the output (C3D's
  // pool5) or for version 7: the conv stores relu(conv + bias) and the pool reads it back. An
  // atomicMax per conv output into the pooled output, which wrote only the pooled bytes, ran
  // slower on every kernel version (H100, session 9, conv5b + pool5 at batch 32, ms, atomics
  // against this: bf16 version 5 0.311 / 0.205, tf32 0.466 / 0.357, fp32 1.910 / 1.879, bf16
  // version 6 4.43 / 0.28); on an H200 it made C3D's fused bf16 training step slower than the
  // unfused chain's.
  float* stored =
      z ? z : static_cast<float*>(malloc_async(sizeof(float) * s.output_size(), stream));
  run_store(s, x, w, bias, stored, true, precision, kernel, stream);
  maxpool3d_fwd(p, stored, pooled, stream);
  if (!z) free_async(stored, stream);
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
  // groups with a valid column (GroupMath::row_sums), so k = 64 (2 groups) fits too. Their
  // layout is the math's: the tensor cores' for fp32 on versions 5-8.
  const Precision math = runs_split_tf32(s, precision, kernel, x, w) ? Precision::tf32 : precision;
  const int groups = (s.k + kBN - 1) / kBN * row_stat_groups_per_tile(math);
  auto* row_sums = static_cast<float2*>(malloc_async(sizeof(float2) * positions * groups, stream));
  auto prob = make_problem<FwdStatsProblem>(s, x, w, bias, op);
  prob.out = {y, row_sums, groups};
  run(prob, s, op, precision, kernel, stream);
  layer_norm_stats_from_row_sums(positions / positions_per_group, positions_per_group, groups, s.k,
                                 row_stat_group_width(math), row_sums, eps, mean, rstd, stream);
  free_async(row_sums, stream);
}

}  // namespace cu3d::cuda
