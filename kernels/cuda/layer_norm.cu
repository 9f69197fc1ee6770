#include "kernels/cuda/layer_norm.cuh"

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

constexpr int64_t kChunk = 16384;  // elements per partial sum: 64 per thread of a 256 block

__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sums two values over the block; thread 0 gets the totals.
__device__ inline void block_sum2(double* a, double* b) {
  __shared__ double sa[8], sb[8];
  *a = warp_sum(*a), *b = warp_sum(*b);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sa[warp] = *a, sb[warp] = *b;
  __syncthreads();
  if (threadIdx.x == 0) {
    *a = *b = 0;
    for (int w = 0; w < 8; ++w)
      *a += sa[w], *b += sb[w];
  }
}

// Block b covers chunk b % chunks of group b / chunks; `term(i, ch, group)` gives the two
// addends of element i. Writes partial[b] = (sum1, sum2).
template <class Term>
__global__ void __launch_bounds__(256)
    group_partials(LayerNormShape s, int64_t chunks, Term term, double2* partial) {
  const int64_t group = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t size = s.m * s.c;
  const int64_t begin = chunk * kChunk, end = min(size, begin + kChunk);
  double a = 0, b = 0;
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    const double2 t = term(group * size + e, int(e % s.c), group);
    a += t.x, b += t.y;
  }
  block_sum2(&a, &b);
  if (threadIdx.x == 0) partial[blockIdx.x] = make_double2(a, b);
}

// One thread per group: adds the group's chunk partials in order.
template <class Finish>
__global__ void __launch_bounds__(256)
    group_finish(int64_t groups, int64_t chunks, const double2* partial, Finish finish) {
  const int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (g >= groups) return;
  double a = 0, b = 0;
  for (int64_t k = 0; k < chunks; ++k)
    a += partial[g * chunks + k].x, b += partial[g * chunks + k].y;
  finish(g, a, b);
}

template <class F>
__global__ void __launch_bounds__(256) elementwise(int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}

// Per-channel partial sums of dy*xhat and dy over a chunk of rows: block (32, 8) covers 32
// channels (coalesced), rows of chunk blockIdx.y.
__global__ void __launch_bounds__(256)
    channel_partials(LayerNormShape s, const float* x, const float* dy, const float* mean,
                     const float* rstd, int64_t rows, int64_t rows_per_chunk, float2* partial) {
  __shared__ float2 sums[8][33];
  const int ch = blockIdx.x * 32 + threadIdx.x;
  const int64_t begin = blockIdx.y * rows_per_chunk;
  const int64_t end = min(rows, begin + rows_per_chunk);
  float2 acc = make_float2(0.f, 0.f);
  if (ch < s.c) {
    for (int64_t r = begin + threadIdx.y; r < end; r += 8) {
      const int64_t g = r / s.m, i = r * s.c + ch;
      const float xhat = (x[i] - mean[g]) * rstd[g];
      acc.x += dy[i] * xhat;
      acc.y += dy[i];
    }
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y > 0 || ch >= s.c) return;
  for (int y = 1; y < 8; ++y)
    acc.x += sums[y][threadIdx.x].x, acc.y += sums[y][threadIdx.x].y;
  partial[blockIdx.y * int64_t(s.c) + ch] = acc;
}

__global__ void __launch_bounds__(256)
    channel_finish(int c, int chunks, const float2* partial, float* dgamma, float* dbeta) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  float a = 0.f, b = 0.f;
  for (int k = 0; k < chunks; ++k)
    a += partial[int64_t(k) * c + ch].x, b += partial[int64_t(k) * c + ch].y;
  dgamma[ch] = a;
  dbeta[ch] = b;
}

std::string describe(const char* op, const LayerNormShape& s) {
  return fmt::format("{} (groups {}, m {}, c {})", op, s.groups, s.m, s.c);
}

int64_t chunks_of(const LayerNormShape& s) {
  return (s.m * s.c + kChunk - 1) / kChunk;
}

// mean and rstd per group of s from term(i) = (value, value^2) of its elements.
template <class Term>
void group_stats(const LayerNormShape& s, double count, Term term, float eps, float* mean,
                 float* rstd, const std::string& what, cudaStream_t stream) {
  const int64_t chunks = chunks_of(s), blocks = s.groups * chunks;
  auto* partial = static_cast<double2*>(malloc_async(sizeof(double2) * blocks, stream));
  group_partials<<<unsigned(blocks), 256, 0, stream>>>(s, chunks, term, partial);
  check_launch(what);
  group_finish<<<unsigned((s.groups + 255) / 256), 256, 0, stream>>>(
      s.groups, chunks, partial, [=] __device__(int64_t g, double sum, double sumsq) {
        const double mu = sum / count;
        const double var = std::max(sumsq / count - mu * mu, 0.0);
        mean[g] = float(mu);
        rstd[g] = float(1.0 / sqrt(var + double(eps)));
      });
  check_launch(what);
  free_async(partial, stream);
}

}  // namespace

void layer_norm_stats(const LayerNormShape& s, const float* x, float eps, float* mean, float* rstd,
                      cudaStream_t stream) {
  group_stats(
      s, double(s.m) * s.c,
      [=] __device__(int64_t i, int, int64_t) {
        const double v = x[i];
        return make_double2(v, v * v);
      },
      eps, mean, rstd, describe("layer_norm_stats", s), stream);
}

void layer_norm_stats_from_row_sums(int64_t groups, int64_t rows, int parts, int channels,
                                    int width, const float2* sums, float eps, float* mean,
                                    float* rstd, cudaStream_t stream) {
  // One "element" per part: (sum, m2 + sum^2 / count), the part's sum of squares recovered in
  // double.
  const LayerNormShape s{groups, rows, parts};
  group_stats(
      s, double(rows) * channels,
      [=] __device__(int64_t i, int part, int64_t) {
        const int count = min(max(channels - part * width, 0), width);
        if (count == 0) return make_double2(0, 0);
        const double sum = sums[i].x;
        return make_double2(sum, double(sums[i].y) + sum * sum / count);
      },
      eps, mean, rstd, describe("layer_norm_stats_from_row_sums", s), stream);
}

void layer_norm_fwd(const LayerNormShape& s, const float* x, const float* gamma, const float* beta,
                    float eps, float* y, float* mean, float* rstd, cudaStream_t stream) {
  layer_norm_stats(s, x, eps, mean, rstd, stream);
  const int64_t size = s.m * s.c, n = s.size();
  const int c = s.c;
  elementwise<<<grid_stride_blocks(n), 256, 0, stream>>>(n, [=] __device__(int64_t i) {
    const int64_t g = i / size;
    const int ch = int(i % c);
    y[i] = (x[i] - mean[g]) * rstd[g] * gamma[ch] + beta[ch];
  });
  check_launch(describe("layer_norm_fwd", s));
}

namespace {

// relu(layer_norm(x)) of V consecutive channels ch.. of a position, group = position / m. With
// V = 4 (ch a multiple of 4, x, gamma and beta 16-byte aligned) x, gamma and beta are read as
// one 16-byte load each.
struct NormReluAt {
  const float *x, *gamma, *beta, *mean, *rstd;
  int64_t m;
  int c;
  template <int V, class Index>
  __device__ void operator()(Index position, int ch, float* v) const {
    const Index g = position / Index(m);
    const float mu = mean[g], r = rstd[g];
    float xv[V], gv[V], bv[V];
    load<V>(x + int64_t(position) * c + ch, xv);
    load<V>(gamma + ch, gv);
    load<V>(beta + ch, bv);
#pragma unroll
    for (int e = 0; e < V; ++e)
      v[e] = fmaxf((xv[e] - mu) * r * gv[e] + bv[e], 0.f);
  }
  template <int V>
  __device__ static void load(const float* p, float* v) {
    if constexpr (V == 4) {
      const float4 q = __ldg(reinterpret_cast<const float4*>(p));
      v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
      v[0] = __ldg(p);
    }
  }
};

// Reads V consecutive channels ch.. of a position of a (positions, c) array.
struct ArrayAt {
  const float* a;
  int c;
  template <int V, class Index>
  __device__ void operator()(Index position, int ch, float* v) const {
    NormReluAt::load<V>(a + int64_t(position) * c + ch, v);
  }
};

// One thread per pooled output (V = 1), or per 4 consecutive channels of one (V = 4: c a
// multiple of 4; one 16-byte load per window position and array, as maxpool3d_fwd's vec4
// kernel, which took the plain pool from 56 % to 82 % of copy bandwidth): the max of the window
// of `value(position, channel, v)`, padded positions excluded (the pool's rule). ReLU outputs
// are never NaN for finite inputs. Index is int when every position and output index fits
// (32-bit divisions, several times cheaper than 64-bit ones), else int64_t.
template <int V, class Index, class Value>
__global__ void __launch_bounds__(256) pool_of(Pool3dShape p, Value value, float* y, Index total) {
  const int cv = p.c / V;
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < total;
       i += Index(gridDim.x) * blockDim.x) {
    const int ch = int(i % cv) * V;
    const Index q = i / cv;
    const int ow = int(q % p.out.w), oh = int(q / p.out.w % p.out.h);
    const int od = int(q / p.out.w / p.out.h % p.out.d), n = int(q / p.out.w / p.out.h / p.out.d);
    const int z0 = od * p.stride.d - p.pad_before.d, y0 = oh * p.stride.h - p.pad_before.h,
              x0 = ow * p.stride.w - p.pad_before.w;
    float best[V];
#pragma unroll
    for (int e = 0; e < V; ++e)
      best[e] = -INFINITY;
    for (int z = max(z0, 0); z < min(z0 + p.window.d, p.in.d); ++z)
      for (int yy = max(y0, 0); yy < min(y0 + p.window.h, p.in.h); ++yy)
        for (int xx = max(x0, 0); xx < min(x0 + p.window.w, p.in.w); ++xx) {
          float v[V];
          value.template operator()<V>(((Index(n) * p.in.d + z) * p.in.h + yy) * p.in.w + xx, ch,
                                       v);
#pragma unroll
          for (int e = 0; e < V; ++e)
            if (v[e] > best[e] || v[e] != v[e]) best[e] = v[e];
        }
    if constexpr (V == 4) {
      reinterpret_cast<float4*>(y)[i] = make_float4(best[0], best[1], best[2], best[3]);
    } else {
      y[i] = best[0];
    }
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Launches pool_of, 4 channels per thread when c and the `aligned` pointers allow it, with
// 32-bit indices when the inputs, the outputs and the grid-stride steps all fit.
template <int V, class Value>
void launch_pool_of_width(const Pool3dShape& p, Value value, float* y, cudaStream_t stream) {
  const int64_t total = p.output_size() / V;
  const int blocks = grid_stride_blocks(total);
  if (std::max(p.output_size(), p.input_size()) + int64_t(blocks) * 256 < (int64_t(1) << 31)) {
    pool_of<V, int><<<blocks, 256, 0, stream>>>(p, value, y, int(total));
  } else {
    pool_of<V, int64_t><<<blocks, 256, 0, stream>>>(p, value, y, total);
  }
}

template <class Value>
void launch_pool_of(const Pool3dShape& p, Value value, float* y, cudaStream_t stream,
                    std::initializer_list<const void*> aligned) {
  bool vec4 = p.c % 4 == 0 && aligned16(y);
  for (const void* a : aligned)
    vec4 = vec4 && aligned16(a);
  if (vec4) {
    launch_pool_of_width<4>(p, value, y, stream);
  } else {
    launch_pool_of_width<1>(p, value, y, stream);
  }
}

}  // namespace

void layer_norm_relu_maxpool_fwd(const Pool3dShape& p, int64_t m, const float* x,
                                 const float* gamma, const float* beta, const float* mean,
                                 const float* rstd, float* y, float* z, cudaStream_t stream) {
  const std::string what = fmt::format("layer_norm_relu_maxpool_fwd (x {}x{}x{}x{}x{}, m {})", p.n,
                                       p.in.d, p.in.h, p.in.w, p.c, m);
  const int64_t positions = int64_t(p.n) * p.in.d * p.in.h * p.in.w;
  CU3D_CHECK(m > 0 && positions % m == 0, "{}: groups of {} positions do not tile the {} positions",
             what, m, positions);
  const NormReluAt norm{x, gamma, beta, mean, rstd, m, p.c};
  if (!z) {
    launch_pool_of(p, norm, y, stream, {x, gamma, beta});
    check_launch(what);
    return;
  }
  const int64_t n = p.input_size();
  const int c = p.c;
  elementwise<<<grid_stride_blocks(n), 256, 0, stream>>>(
      n, [=] __device__(int64_t i) { norm.operator()<1>(i / c, int(i % c), z + i); });
  check_launch(what);
  launch_pool_of(p, ArrayAt{z, p.c}, y, stream, {z});
  check_launch(what);
}

void layer_norm_bwd(const LayerNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                    cudaStream_t stream) {
  const std::string what = describe("layer_norm_bwd", s);
  const int64_t chunks = chunks_of(s), blocks = s.groups * chunks, n = s.size();
  const double count = double(s.m) * s.c;
  auto* partial = static_cast<double2*>(malloc_async(sizeof(double2) * blocks, stream));
  // Per group: mean of g = dy * gamma and of g * xhat, kept in `means` (2 floats per group).
  auto* means = static_cast<float2*>(malloc_async(sizeof(float2) * s.groups, stream));
  group_partials<<<unsigned(blocks), 256, 0, stream>>>(
      s, chunks,
      [=] __device__(int64_t i, int ch, int64_t g) {
        const double gi = double(dy[i]) * gamma[ch];
        const double xhat = (double(x[i]) - mean[g]) * rstd[g];
        return make_double2(gi, gi * xhat);
      },
      partial);
  check_launch(what);
  group_finish<<<unsigned((s.groups + 255) / 256), 256, 0, stream>>>(
      s.groups, chunks, partial, [=] __device__(int64_t g, double sum_g, double sum_gx) {
        means[g] = make_float2(float(sum_g / count), float(sum_gx / count));
      });
  check_launch(what);
  const int64_t size = s.m * s.c;
  const int c = s.c;
  elementwise<<<grid_stride_blocks(n), 256, 0, stream>>>(n, [=] __device__(int64_t i) {
    const int64_t g = i / size;
    const int ch = int(i % c);
    const float xhat = (x[i] - mean[g]) * rstd[g];
    dx[i] = rstd[g] * (dy[i] * gamma[ch] - means[g].x - xhat * means[g].y);
  });
  check_launch(what);

  const int64_t rows = s.rows();
  const int row_chunks = int(std::clamp<int64_t>(rows / 512, 1, 1024));
  const int64_t rows_per_chunk = (rows + row_chunks - 1) / row_chunks;
  auto* cpartial = static_cast<float2*>(malloc_async(sizeof(float2) * row_chunks * s.c, stream));
  channel_partials<<<dim3((s.c + 31) / 32, row_chunks), dim3(32, 8), 0, stream>>>(
      s, x, dy, mean, rstd, rows, rows_per_chunk, cpartial);
  check_launch(what);
  channel_finish<<<(s.c + 255) / 256, 256, 0, stream>>>(s.c, row_chunks, cpartial, dgamma, dbeta);
  check_launch(what);
  free_async(cpartial, stream);
  free_async(means, stream);
  free_async(partial, stream);
}

}  // namespace cu3d::cuda
