#include "kernels/cuda/batch_norm.cuh"

#include <algorithm>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/vec4.cuh"

namespace cu3d::cuda {
namespace {

// Blocks of 32 channels x 8 row lanes; a chunk of rows per blockIdx.y. 512 rows per chunk
// (64 per row lane) amortize the block's start; at most 1024 chunks bound the partials.
constexpr int kRowLanes = 8;
constexpr int64_t kRowsPerChunkMin = 512;
constexpr int kMaxChunks = 1024;

struct ChunkPlan {
  int chunks;
  int64_t rows_per_chunk;
};

ChunkPlan plan_chunks(int64_t rows) {
  const int chunks = int(std::clamp<int64_t>(rows / kRowsPerChunkMin, 1, kMaxChunks));
  return {chunks, (rows + chunks - 1) / chunks};
}

// partial[chunk * c + ch] = sum over the chunk's rows r of term(r * c + ch, ch).
template <class Term>
__global__ void __launch_bounds__(32 * kRowLanes)
    channel_partials(int64_t rows, int c, int64_t rows_per_chunk, Term term, double2* partial) {
  __shared__ double2 sums[kRowLanes][33];
  const int ch = blockIdx.x * 32 + threadIdx.x;
  const int64_t begin = blockIdx.y * rows_per_chunk;
  const int64_t end = min(rows, begin + rows_per_chunk);
  double2 acc = make_double2(0, 0);
  if (ch < c) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      const double2 t = term(r * c + ch, ch);
      acc.x += t.x, acc.y += t.y;
    }
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y > 0 || ch >= c) return;
  for (int y = 1; y < kRowLanes; ++y)
    acc.x += sums[y][threadIdx.x].x, acc.y += sums[y][threadIdx.x].y;
  partial[blockIdx.y * int64_t(c) + ch] = acc;
}

// One thread per channel: adds the chunk partials in chunk order and calls finish(ch, total).
template <class Finish>
__global__ void __launch_bounds__(256)
    channel_finish(int c, int chunks, const double2* partial, Finish finish) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double2 total = make_double2(0, 0);
  for (int k = 0; k < chunks; ++k)
    total.x += partial[int64_t(k) * c + ch].x, total.y += partial[int64_t(k) * c + ch].y;
  finish(ch, total);
}

template <class F>
__global__ void __launch_bounds__(256) elementwise(int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}

// The elementwise passes keep each thread on V channels (V = 4: a float4), so that no element
// needs a division to find its channel (a 64-bit modulo is dozens of instructions, more than
// the element's bytes take at the DRAM's rate): thread t of lanes x row_lanes takes channels
// V (t % lanes) .. + V - 1, where lanes = c / V, in rows t / lanes, + row_lanes, ...
struct RowLanes {
  int lanes;
  int64_t row_lanes;
  unsigned blocks;
};

// About two resident grids' worth of threads (enough loads in flight to cover DRAM latency).
RowLanes plan_row_lanes(int64_t rows, int lanes) {
  const int64_t target = int64_t(multiprocessor_count()) * 4096;
  const int64_t row_lanes = std::clamp<int64_t>(target / lanes, 1, rows);
  return {lanes, row_lanes, unsigned((row_lanes * lanes + 255) / 256)};
}

// y = (x - mean) * (gamma * rstd) + beta, centred before scaling as on the CPU.
template <int V>
__global__ void __launch_bounds__(256)
    normalize_rows(int64_t rows, int c, RowLanes plan, const float* x, const float* gamma,
                   const float* beta, const float* mean, const float* rstd, float* y) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= plan.lanes * plan.row_lanes) return;
  const int ch0 = int(t % plan.lanes) * V;
  float m[V], scale[V], shift[V];
#pragma unroll
  for (int v = 0; v < V; ++v)
    m[v] = mean[ch0 + v], scale[v] = gamma[ch0 + v] * rstd[ch0 + v], shift[v] = beta[ch0 + v];
  for (int64_t r = t / plan.lanes; r < rows; r += plan.row_lanes) {
    float in[V], out[V];
    load_vec<V>(x + r * c + ch0, in);
#pragma unroll
    for (int v = 0; v < V; ++v)
      out[v] = (in[v] - m[v]) * scale[v] + shift[v];
    store_vec<V>(y + r * c + ch0, out);
  }
}

// dx = a * dy + b * (x - mean) + k per channel, (a, b) and k in double (the backward's folding).
template <int V>
__global__ void __launch_bounds__(256)
    backward_rows(int64_t rows, int c, RowLanes plan, const float* x, const float* mean,
                  const float* dy, const double2* ab, const double* k, float* dx) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= plan.lanes * plan.row_lanes) return;
  const int ch0 = int(t % plan.lanes) * V;
  double2 coef[V];
  double offset[V];
  float m[V];
#pragma unroll
  for (int v = 0; v < V; ++v)
    coef[v] = ab[ch0 + v], offset[v] = k[ch0 + v], m[v] = mean[ch0 + v];
  for (int64_t r = t / plan.lanes; r < rows; r += plan.row_lanes) {
    float xs[V], g[V], out[V];
    load_vec<V>(x + r * c + ch0, xs);
    load_vec<V>(dy + r * c + ch0, g);
#pragma unroll
    for (int v = 0; v < V; ++v)
      out[v] = float(coef[v].x * g[v] + coef[v].y * (double(xs[v]) - m[v]) + offset[v]);
    store_vec<V>(dx + r * c + ch0, out);
  }
}

// Launches kernel<4> where every row is whole float4s of aligned channels, else kernel<1>.
template <class Launch>
void per_channel_launch(const BatchNormShape& s, std::initializer_list<const void*> arrays,
                        Launch launch) {
  if (s.c % 4 == 0 && aligned16(arrays))
    launch(std::integral_constant<int, 4>{}, plan_row_lanes(s.rows, s.c / 4));
  else
    launch(std::integral_constant<int, 1>{}, plan_row_lanes(s.rows, s.c));
}

// Sums per channel: partials then totals, finish(ch, total) on the totals.
template <class Term, class Finish>
void reduce_channels(const BatchNormShape& s, Term term, Finish finish, double2* partial,
                     const std::string& what, cudaStream_t stream) {
  const ChunkPlan plan = plan_chunks(s.rows);
  channel_partials<<<dim3((s.c + 31) / 32, plan.chunks), dim3(32, kRowLanes), 0, stream>>>(
      s.rows, s.c, plan.rows_per_chunk, term, partial);
  check_launch(what);
  channel_finish<<<(s.c + 255) / 256, 256, 0, stream>>>(s.c, plan.chunks, partial, finish);
  check_launch(what);
}

void normalize(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
               const float* mean, const float* rstd, float* y, const std::string& what,
               cudaStream_t stream) {
  per_channel_launch(s, {x, y}, [&](auto vec, RowLanes plan) {
    normalize_rows<decltype(vec)::value>
        <<<plan.blocks, 256, 0, stream>>>(s.rows, s.c, plan, x, gamma, beta, mean, rstd, y);
  });
  check_launch(what);
}

std::string describe(const char* op, const BatchNormShape& s) {
  return fmt::format("{} (rows {}, c {})", op, s.rows, s.c);
}

// Device scratch, freed in stream order: 4*c doubles of per-channel coefficients, then the
// chunk partials (16-byte aligned: 4*c doubles is a multiple of 16 bytes).
class Scratch {
 public:
  Scratch(const BatchNormShape& s, cudaStream_t stream)
      : ptr_(malloc_async(
            sizeof(double) * 4 * s.c + sizeof(double2) * plan_chunks(s.rows).chunks * s.c, stream)),
        stream_(stream),
        c_(s.c) {}
  ~Scratch() { free_async(ptr_, stream_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  double* coefficients() const { return static_cast<double*>(ptr_); }
  double2* chunks() const { return reinterpret_cast<double2*>(coefficients() + 4 * c_); }

 private:
  void* ptr_;
  cudaStream_t stream_;
  int c_;
};

}  // namespace

void batch_norm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma,
                          const float* beta, float eps, float momentum, float* y, float* mean,
                          float* rstd, float* running_mean, float* running_var,
                          cudaStream_t stream) {
  const std::string what = describe("batch_norm_fwd_train", s);
  CU3D_CHECK(s.rows >= 2,
             "{}: training needs at least 2 values per channel; use eval mode or a "
             "larger batch",
             what);
  const Scratch scratch(s, stream);
  const double rows = double(s.rows);
  const bool update = running_mean && running_var;
  const double m = momentum, bessel = rows / (rows - 1);
  // One pass over x for both statistics: per channel the sums of d = x - shift and of d^2, in
  // double, with the channel's value in row 0 as the shift (the shifted-data algorithm: var =
  // E[d^2] - E[d]^2 cancels little when the shift lies near the mean, as a sample of the channel
  // does, so a large mean costs no precision). 12 bytes an element in all, not 16 as the mean
  // and then the centred squares cost.
  reduce_channels(
      s,
      [=] __device__(int64_t i, int ch) {
        const double d = double(x[i]) - double(x[ch]);
        return make_double2(d, d * d);
      },
      [=] __device__(int ch, double2 t) {
        const double mean_d = t.x / rows;
        const double var = fmax(t.y / rows - mean_d * mean_d, 0.0);
        const double mu = double(x[ch]) + mean_d;
        mean[ch] = float(mu);
        rstd[ch] = float(1.0 / sqrt(var + double(eps)));
        if (!update) return;
        running_mean[ch] = float((1.0 - m) * running_mean[ch] + m * mu);
        running_var[ch] = float((1.0 - m) * running_var[ch] + m * var * bessel);
      },
      scratch.chunks(), what, stream);
  normalize(s, x, gamma, beta, mean, rstd, y, what, stream);
}

void batch_norm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma,
                         const float* beta, const float* running_mean, const float* running_var,
                         float eps, float* y, float* mean, float* rstd, cudaStream_t stream) {
  const std::string what = describe("batch_norm_fwd_eval", s);
  elementwise<<<(s.c + 255) / 256, 256, 0, stream>>>(s.c, [=] __device__(int64_t ch) {
    mean[ch] = running_mean[ch];
    rstd[ch] = float(1.0 / sqrt(double(running_var[ch]) + double(eps)));
  });
  check_launch(what);
  normalize(s, x, gamma, beta, mean, rstd, y, what, stream);
}

void batch_norm_bwd(const BatchNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, bool batch_stats, float* dx, float* dgamma,
                    float* dbeta, cudaStream_t stream) {
  const std::string what = describe("batch_norm_bwd", s);
  const Scratch scratch(s, stream);
  // Per channel dx = a * dy + b * (x - mean) + k, the CPU's folding, with (a, b) and k in
  // double.
  double2* ab = reinterpret_cast<double2*>(scratch.coefficients());
  double* k = scratch.coefficients() + 2 * s.c;
  const double rows = double(s.rows);
  reduce_channels(
      s,
      [=] __device__(int64_t i, int ch) {
        const double d = dy[i];
        return make_double2(d * (double(x[i]) - mean[ch]) * rstd[ch], d);
      },
      [=] __device__(int ch, double2 t) {
        dgamma[ch] = float(t.x);
        dbeta[ch] = float(t.y);
        const double gr = double(gamma[ch]) * rstd[ch];
        const double mean_dy = batch_stats ? t.y / rows : 0.0;
        const double mean_dyx = batch_stats ? t.x / rows : 0.0;
        k[ch] = -gr * mean_dy;
        ab[ch] = make_double2(gr, -gr * rstd[ch] * mean_dyx);
      },
      scratch.chunks(), what, stream);
  per_channel_launch(s, {x, dy, dx}, [&](auto vec, RowLanes plan) {
    backward_rows<decltype(vec)::value>
        <<<plan.blocks, 256, 0, stream>>>(s.rows, s.c, plan, x, mean, dy, ab, k, dx);
  });
  check_launch(what);
}

}  // namespace cu3d::cuda
