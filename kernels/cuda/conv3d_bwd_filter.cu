// Backward-filter conv3d as an implicit GEMM (version 2; see conv3d_igemm.cuh):
//   dw (M = k, N = taps*c) = sum over r < R = n*od*oh*ow of A(m, r) * B(r, n)
//   A(m, r) = dy[r * k + m]                                  (dy transposed)
//   B(r, n) = x[output pixel r shifted by tap n / c, channel n % c]   (zero in the padding)
// The reduction runs over every output position (R = 401k for conv1a at batch 2) while the
// result is small (64 x 81 for conv1a), so R is split across grid.z (split-K) until the grid
// fills the GPU; the partial tiles are summed by a second, deterministic pass. The bias
// gradient is a column sum of dy, done the same way.
//
// Version 3 (ConvKernel::pipelined, bf16 and tf32; conv3d_bwd_filter_pipelined.cuh) runs the
// same GEMM, split and epilogue with the forward's version 3 data movement, on copies of x and dy
// in the compute type; fp32 asked for on versions 5-8 runs on it as three tf32 products
// (run_split_tf32).
#include <fmt/format.h>

#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/conv3d_bwd_filter_pipelined.cuh"
#include "kernels/cuda/conv3d_igemm_launch.cuh"

namespace cu3d::cuda {
namespace {

using namespace igemm;

struct BwdFilterProblem {
  static constexpr bool kAContigK = false;
  static constexpr bool kBContigK = false;
  Geometry g;
  int M, N, R;
  const float* x;
  const float* dy;
  float* out;  // dw, or splits partial copies of it
  bool vec_a, vec_b;

  __device__ void load_a(int m, int r, float* v) const {
    if (r >= R) return zero4(v);
    const int row = r * M;
    if (vec_a) return m < M ? load4(dy, row + m, v) : zero4(v);
#pragma unroll
    for (int e = 0; e < 4; ++e)
      v[e] = m + e < M ? __ldg(dy + row + m + e) : 0.f;
  }

  __device__ void load_b(int r, int n, float* v) const {
    if (r >= R) return zero4(v);
    const Pixel o = split_pixel(r, g.div_od, g.div_oh, g.div_ow);
    if (vec_b) {
      if (n >= N) return zero4(v);
      uint32_t c;
      const int off = input_offset(g, o, split_tap(g.div_c.divmod(n, &c), g));
      return off < 0 ? zero4(v) : load4(x, off + c, v);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      uint32_t c;
      const int off = n + e < N ? input_offset(g, o, split_tap(g.div_c.divmod(n + e, &c), g)) : -1;
      v[e] = off < 0 ? 0.f : __ldg(x + off + c);
    }
  }

  __device__ void store(int m, int n, float v, int split) const {
    out[(int64_t(split) * M + m) * N + n] = v;
  }
};

// Partial column sums of a (rows, cols) array: block (32, 8) sums columns
// blockIdx.x*32 + threadIdx.x over the rows of chunk blockIdx.y (coalesced 128-byte rows).
__global__ void __launch_bounds__(256)
    column_sum_partials(const float* a, int rows, int cols, int rows_per_chunk, float* partial) {
  __shared__ float sums[8][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  const int begin = blockIdx.y * rows_per_chunk;
  const int end = min(rows, begin + rows_per_chunk);
  float acc = 0.f;
  if (col < cols)
    for (int r = begin + threadIdx.y; r < end; r += 8)
      acc += __ldg(a + int64_t(r) * cols + col);
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y > 0 || col >= cols) return;
  for (int y = 1; y < 8; ++y)
    acc += sums[y][threadIdx.x];
  partial[int64_t(blockIdx.y) * cols + col] = acc;
}

// dbias[k] = sum over positions of dy[p, k], in two deterministic passes.
void bias_grad(const float* dy, int rows, int cols, float* dbias, cudaStream_t stream) {
  const int chunks = std::min(256, std::max(1, rows / 512));
  const int rows_per_chunk = (rows + chunks - 1) / chunks;
  float* partial = static_cast<float*>(malloc_async(sizeof(float) * size_t(chunks) * cols, stream));
  column_sum_partials<<<dim3((cols + 31) / 32, chunks), dim3(32, 8), 0, stream>>>(
      dy, rows, cols, rows_per_chunk, partial);
  check_launch(fmt::format("conv3d_bwd_filter bias (dy {}x{})", rows, cols));
  sum_splits(partial, chunks, cols, dbias, stream);
  free_async(partial, stream);
}

// Version 3 on x and dy already in P's compute type (ComputeValue, cast.cuh): one launch of (N
// tiles, M tiles, splits) blocks.
template <Precision P>
void launch_pipelined(const BwdFilterProblem& prob, const ComputeValue<P>* x,
                      const ComputeValue<P>* dy, SplitPlan plan, cudaStream_t stream,
                      const std::string& what) {
  namespace filter = pipelined::filter;
  const auto kernel = filter::conv3d_bwd_filter_pipelined<P, BwdFilterProblem, ComputeValue<P>>;
  allow_shared_memory(kernel, filter::kSharedBytes);
  const dim3 grid(prob.N / pipelined::kBN, (prob.M + pipelined::kBM - 1) / pipelined::kBM,
                  plan.splits);
  kernel<<<grid, pipelined::kThreads, filter::kSharedBytes, stream>>>(prob, x, dy,
                                                                      plan.tiles_per_split);
  check_launch(what);
}

// Version 3 on fp32 x and dy: their copies in the compute type (compute_copy), then the launch.
template <Precision P>
void run_pipelined(const BwdFilterProblem& prob, const Conv3dShape& s, SplitPlan plan,
                   cudaStream_t stream, const std::string& what) {
  ComputeValue<P>* x = compute_copy<P>(prob.x, s.input_size(), stream);
  ComputeValue<P>* dy = compute_copy<P>(prob.dy, s.output_size(), stream);
  launch_pipelined<P>(prob, x, dy, plan, stream, what);
  free_async(x, stream);
  free_async(dy, stream);
}

// Which kernel runs bwd-filter's GEMM, on what: version 2; version 3 on copies of the fp32 x and
// dy in the compute type; version 3 on an x and dy that hold tf32 values already (3xTF32's split).
enum class FilterGemm { version2, version3, version3_on_tf32 };

// The GEMM of s's bwd-filter into dw in `precision` on `kernel`, its split-K partials summed after.
void run_gemm(const Conv3dShape& s, const float* x, const float* dy, float* dw, Precision precision,
              FilterGemm kernel, cudaStream_t stream) {
  const bool v3 = kernel != FilterGemm::version2;
  BwdFilterProblem prob;
  prob.g = make_geometry(s, "conv3d_bwd_filter");
  prob.M = s.k;
  prob.N = prob.g.taps * s.c;
  prob.R = s.n * s.out.d * s.out.h * s.out.w;
  prob.x = x, prob.dy = dy;
  prob.vec_a = s.k % 4 == 0;
  prob.vec_b = s.c % 4 == 0;
  const int64_t blocks_mn = int64_t((prob.M + kBM - 1) / kBM) * ((prob.N + kBN - 1) / kBN);
  const int stage_r = precision == Precision::bf16
                          ? pipelined::filter::Layout<Precision::bf16>::kStageR
                          : pipelined::filter::Layout<Precision::tf32>::kStageR;
  const SplitPlan plan = v3 ? split_tiles((prob.R + stage_r - 1) / stage_r, blocks_mn)
                            : plan_splits(prob.R, precision, blocks_mn, true);
  const int64_t count = int64_t(prob.M) * prob.N;
  prob.out = plan.splits == 1
                 ? dw
                 : static_cast<float*>(malloc_async(sizeof(float) * count * plan.splits, stream));
  const std::string what = fmt::format(
      "conv3d_bwd_filter{} (x {}x{}x{}x{}x{}, k {}, {} splits, {})", v3 ? " version 3" : "", s.n,
      s.in.d, s.in.h, s.in.w, s.c, s.k, plan.splits, to_string(precision));
  if (kernel == FilterGemm::version3_on_tf32) {
    launch_pipelined<Precision::tf32>(prob, x, dy, plan, stream, what);
  } else if (v3 && precision == Precision::bf16) {
    run_pipelined<Precision::bf16>(prob, s, plan, stream, what);
  } else if (v3) {
    run_pipelined<Precision::tf32>(prob, s, plan, stream, what);
  } else {
    run_implicit_gemm(prob, precision, plan, stream, what);
  }
  if (plan.splits > 1) {
    sum_splits(prob.out, plan.splits, count, dw, stream);
    free_async(prob.out, stream);
  }
}

// fp32 as three tf32 products on version 3 ("3xTF32", as the forward's on versions 5-8,
// conv3d_fwd.cu): x and dy split into tf32 heads and tails (fp32_to_tf32_split), each laid out as
// three batches of s.n samples, x's [heads, heads, tails] against dy's [heads, tails, heads]. The
// bwd-filter of s with 3n samples sums over all their positions: per filter value, head * head +
// head * tail + tail * head over every position of s, each product of the two fp32 values but
// tail * tail (2^-22 of it), accumulated in fp32 as FFMA's. 12 bytes of workspace per element of x
// and dy.
void run_split_tf32(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                    cudaStream_t stream) {
  Conv3dShape tripled = s;
  tripled.n = 3 * s.n;
  auto* x3 = static_cast<float*>(malloc_async(sizeof(float) * tripled.input_size(), stream));
  auto* dy3 = static_cast<float*>(malloc_async(sizeof(float) * tripled.output_size(), stream));
  fp32_to_tf32_split(x, x3, 1, int(s.input_size()), Tf32Split::head_head_tail, stream);
  fp32_to_tf32_split(dy, dy3, 1, int(s.output_size()), Tf32Split::head_tail_head, stream);
  run_gemm(tripled, x3, dy3, dw, Precision::tf32, FilterGemm::version3_on_tf32, stream);
  free_async(x3, stream);
  free_async(dy3, stream);
}

}  // namespace

bool conv3d_bwd_filter_pipelined_supports(const Conv3dShape& s, Precision precision) {
  // A 64-column N tile must be 64 channels of one tap, and a 16-byte chunk of dy's row whole
  // filters at an aligned address (8 in bf16, 4 in tf32).
  return (precision == Precision::bf16 || precision == Precision::tf32) &&
         s.c % pipelined::kBN == 0 && s.k % 8 == 0;
}

bool conv3d_bwd_filter_runs_split_tf32(const Conv3dShape& s, Precision precision,
                                       ConvKernel kernel) {
  // Three batches of s.n must keep x under make_geometry's 2^31 elements.
  return precision == Precision::fp32 && is_wgmma_version(kernel) &&
         conv3d_bwd_filter_pipelined_supports(s, Precision::tf32) &&
         3 * s.input_size() < (int64_t(1) << 31) && 3 * s.output_size() < (int64_t(1) << 31);
}

void conv3d_bwd_filter(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias, Precision precision, cudaStream_t stream, ConvKernel kernel) {
  if (conv3d_bwd_filter_runs_split_tf32(s, precision, kernel)) {
    run_split_tf32(s, x, dy, dw, stream);
  } else {
    const bool v3 =
        kernel != ConvKernel::implicit_gemm && conv3d_bwd_filter_pipelined_supports(s, precision);
    run_gemm(s, x, dy, dw, precision, v3 ? FilterGemm::version3 : FilterGemm::version2, stream);
  }
  if (dbias) bias_grad(dy, s.n * s.out.d * s.out.h * s.out.w, s.k, dbias, stream);
}

}  // namespace cu3d::cuda
