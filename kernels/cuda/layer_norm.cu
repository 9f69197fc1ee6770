#include "kernels/cuda/layer_norm.cuh"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include <fmt/format.h>

#include "kernels/cuda/co_resident_launch.cuh"
#include "kernels/cuda/layer_norm_plan.h"
#include "kernels/cuda/pool_window.cuh"
#include "kernels/cuda/ptx.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/vec4.cuh"

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

// Adds each group's chunk partials in a fixed order (deterministic) and calls finish(group, a, b)
// once: L lanes per group, lane l taking chunks l, l + L, ..., then a shuffle tree. L = 32 where
// groups have many chunks (per-sample statistics: 784 per group on C3D's conv1a), whose loads a
// lone thread would wait on one after another; L = 1 for many small groups.
template <int L, class Finish>
__global__ void __launch_bounds__(256)
    group_finish(int64_t groups, int64_t chunks, const double2* partial, Finish finish) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, g = t / L;
  const int lane = int(t % L);
  if (g >= groups) return;  // whole warps when L = 32: g is uniform across a warp
  double a = 0, b = 0;
  for (int64_t k = lane; k < chunks; k += L)
    a += partial[g * chunks + k].x, b += partial[g * chunks + k].y;
  for (int o = L / 2; o > 0; o /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  if (lane == 0) finish(g, a, b);
}

template <class Finish>
void launch_group_finish(int64_t groups, int64_t chunks, const double2* partial, Finish finish,
                         cudaStream_t stream) {
  if (chunks >= 32) {
    group_finish<32>
        <<<unsigned((groups * 32 + 255) / 256), 256, 0, stream>>>(groups, chunks, partial, finish);
  } else {
    group_finish<1>
        <<<unsigned((groups + 255) / 256), 256, 0, stream>>>(groups, chunks, partial, finish);
  }
}

// The elementwise passes sweep their arrays from the end back to the start. The passes that
// re-read x (normalize after the statistics; dx after the backward's sums) then meet first what
// the pass before them read last, while it is still in L2 (60 MB on an H200): all of C3D's conv4b
// activation at batch 32 (51 MB), the last tens of MB of the larger ones. In order, the sweep
// would start where the previous pass started, long evicted.

// f(i) for i in [0, n).
template <class F>
__global__ void __launch_bounds__(256) elementwise(int64_t n, F f) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x)
    f(n - 1 - k);
}

// f(i, g, ch) for elements 4i .. 4i+3 of an array of groups of size4 float4s, rows of c4 float4s:
// g the group, ch the first of the 4 channels. 32-bit indices and 16-byte accesses: in a 64-bit
// elementwise pass over single floats the divisions by the group size and c cost more than the
// memory traffic (layer norm at 28-40 % of copy bandwidth on an H200).
template <class F>
__global__ void __launch_bounds__(256) elementwise_vec4(int n4, int size4, int c4, F f) {
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n4; k += gridDim.x * blockDim.x) {
    const int i = n4 - 1 - k;
    f(i, i / size4, i % c4 * 4);
  }
}

// Whether elementwise_vec4 takes n elements in rows of c channels over these arrays.
bool vec4_fits(int64_t n, int c, std::initializer_list<const void*> arrays) {
  return c % 4 == 0 && n / 4 + int64_t(grid_stride_blocks(n / 4)) * 256 < (int64_t(1) << 31) &&
         aligned16(arrays);
}

// Per-channel partial sums over a chunk of rows, term(row, ch) giving a row's two addends (dy*xhat
// and dy): block (32, 8) covers 32 channels (coalesced), the rows of chunk blockIdx.y, added in
// a fixed order.
template <class Term>
__global__ void __launch_bounds__(256)
    column_partials(int c, int64_t rows, int64_t rows_per_chunk, Term term, float2* partial) {
  __shared__ float2 sums[8][33];
  const int ch = blockIdx.x * 32 + threadIdx.x;
  const int64_t begin = blockIdx.y * rows_per_chunk;
  const int64_t end = min(rows, begin + rows_per_chunk);
  float2 acc = make_float2(0.f, 0.f);
  if (ch < c) {
#pragma unroll 4
    for (int64_t r = begin + threadIdx.y; r < end; r += 8) {
      const float2 t = term(r, ch);
      acc.x += t.x, acc.y += t.y;
    }
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y > 0 || ch >= c) return;
  for (int y = 1; y < 8; ++y)
    acc.x += sums[y][threadIdx.x].x, acc.y += sums[y][threadIdx.x].y;
  partial[blockIdx.y * int64_t(c) + ch] = acc;
}

// ---- per-sample backward: the group sums and the channel sums in one pass --------------------
// Block b covers elements [chunk * (b % chunks), + chunk) of group b / chunks (chunk a multiple of
// 512, c a divisor of 512: thread t meets channels t % c and (t + 256) % c only). It reads x and dy
// once for both: the group's sums of g = dy * gamma and g * xhat (double, as group_partials) into
// group_partial[b], and each channel's sums of dy * xhat and dy into channel_partial[b][c], added
// over the block's threads in a fixed order (deterministic). Against group_partials followed by
// channel_partials this saves one read of x and dy: 5 passes over the data instead of 7.
constexpr int kBwdChunkAlign = 512;

__global__ void __launch_bounds__(256)
    bwd_partials(LayerNormShape s, int64_t chunks, int64_t chunk, const float* x, const float* dy,
                 const float* gamma, const float* mean, const float* rstd, double2* group_partial,
                 float2* channel_partial) {
  __shared__ float2 sums[2][256];  // [which of the thread's two channels][thread]
  const int64_t group = blockIdx.x / chunks, size = s.m * s.c;
  const int64_t begin = blockIdx.x % chunks * chunk, end = min(size, begin + chunk);
  const float mu = mean[group], r = rstd[group];
  const float* xg = x + group * size;
  const float* dyg = dy + group * size;
  // The thread's two channels and their gamma: elements e (channel t % c) and e + 256.
  const int ch[2] = {int(threadIdx.x % s.c), int((threadIdx.x + blockDim.x) % s.c)};
  const float ga[2] = {gamma[ch[0]], gamma[ch[1]]};
  double sum_g = 0, sum_gx = 0;
  float2 ch_sums[2] = {make_float2(0.f, 0.f), make_float2(0.f, 0.f)};
  for (int64_t e = begin + threadIdx.x; e < end; e += 2 * blockDim.x) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t i = e + half * blockDim.x;
      if (i >= end) break;
      const float d = dyg[i], xhat = (xg[i] - mu) * r;
      const double g = double(d) * ga[half];
      sum_g += g;
      sum_gx += g * ((double(xg[i]) - mu) * r);  // in double, as group_partials' term
      ch_sums[half].x += d * xhat;
      ch_sums[half].y += d;
    }
  }
  sums[0][threadIdx.x] = ch_sums[0];
  sums[1][threadIdx.x] = ch_sums[1];
  block_sum2(&sum_g, &sum_gx);  // its barrier also orders the stores to `sums`
  if (threadIdx.x == 0) group_partial[blockIdx.x] = make_double2(sum_g, sum_gx);
  // Channel ch gathers slots ch, ch + c, ... of the 512 (slot k: thread k % 256, half k / 256).
  for (int ch = threadIdx.x; ch < s.c; ch += blockDim.x) {
    float2 total = make_float2(0.f, 0.f);
    for (int k = ch; k < kBwdChunkAlign; k += s.c)
      total.x += sums[k / 256][k % 256].x, total.y += sums[k / 256][k % 256].y;
    channel_partial[int64_t(blockIdx.x) * s.c + ch] = total;
  }
}

// Whether bwd_partials takes s: c divides 512 (each thread meets at most two channels), and at
// most 1024 groups, so its per-block channel partials stay small against x (every group has a
// block of its own: C3D's per-sample norm has a batch of groups).
bool bwd_partials_fit(const LayerNormShape& s) {
  return s.c > 0 && kBwdChunkAlign % s.c == 0 && s.groups <= 1024;
}

// dgamma, dbeta from `blocks` partials per channel: a warp per channel, its lanes striding over the
// partials, then a shuffle tree; a fixed order either way (deterministic). A thread per channel
// would wait on its partials' loads one after another (264 for the per-position backward, up to
// 1024 for channel_partials').
__global__ void __launch_bounds__(256)
    channel_finish_warps(int c, int64_t blocks, const float2* partial, float* dgamma,
                         float* dbeta) {
  const int ch = int((blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32),
            lane = threadIdx.x % 32;
  if (ch >= c) return;  // whole warps: ch is uniform across a warp
  float a = 0.f, b = 0.f;
  for (int64_t k = lane; k < blocks; k += 32)
    a += partial[k * c + ch].x, b += partial[k * c + ch].y;
  for (int o = 16; o > 0; o /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  if (lane == 0) dgamma[ch] = a, dbeta[ch] = b;
}

// dgamma, dbeta as the column sums of `rows` rows of c terms (term(row, ch): the row's dy*xhat
// and dy of channel ch): column_partials over chunks of 128 rows or more (at most 1024 chunks),
// then channel_finish_warps over the chunks.
template <class Term>
void channel_sums(int c, int64_t rows, Term term, float* dgamma, float* dbeta,
                  const std::string& what, cudaStream_t stream) {
  const int row_chunks = int(std::clamp<int64_t>(rows / 128, 1, 1024));
  const int64_t rows_per_chunk = (rows + row_chunks - 1) / row_chunks;
  auto* partial = static_cast<float2*>(malloc_async(sizeof(float2) * row_chunks * c, stream));
  column_partials<<<dim3((c + 31) / 32, row_chunks), dim3(32, 8), 0, stream>>>(
      c, rows, rows_per_chunk, term, partial);
  check_launch(what);
  channel_finish_warps<<<(c + 7) / 8, 256, 0, stream>>>(c, row_chunks, partial, dgamma, dbeta);
  check_launch(what);
  free_async(partial, stream);
}

// ---- per sample in one launch: each chunk's sums, then the chunk a sample back ----------------
// A group's statistics must be complete before any of its elements is normalized, so the
// kernels above read x twice from DRAM: the normalize pass comes back to a sample long after
// the statistics pass read it (C3D's conv2a activation at batch 32 is 822 MB, one sample 26 MB).
// Here one launch of (groups + 1) * chunks blocks does both, one sample apart. The block that
// draws ticket t = s * chunks + k (tickets from an atomic counter, in the order blocks start)
//   1. sums chunk k of sample s (if s < groups); the last of sample s's blocks to finish folds
//      the sample's partials, in a fixed order (deterministic), into its statistics and raises
//      ready[s];
//   2. waits for ready[s - 1] and normalizes chunk k of sample s - 1 (if s >= 1), which the
//      block of ticket t - chunks read one sample of traffic earlier: still in L2 where a sample
//      fits (conv2a's 26 MB and smaller). That read and the output use the streaming hints, so
//      they do not push the next sample's chunks out of L2.
// Step 2 only ever waits on blocks with smaller tickets, which have started (a ticket is drawn by
// a running block) and whose step 1 waits on nothing: no deadlock, however blocks are scheduled.
// Thread t of a chunk owns float4s t + 256 j, j < kSampleVecs; with c dividing 1024 and chunks
// starting at multiples of 1024 elements those are always channels 4t % c .. 4t % c + 3, so a
// thread loads its gamma (and beta) once and keeps its channel sums in registers.
constexpr int kSampleVecs = 8;                           // float4s per thread and chunk
constexpr int64_t kSampleChunk = 4 * 256 * kSampleVecs;  // 8192 elements
constexpr uint32_t kMaxReadyPolls = 1u << 26;            // seconds: a lost hand-over traps

// Whether the one-launch kernels take s: groups of several positions, c a divisor of 1024 and
// a multiple of 4, the arrays 16-byte aligned.
bool sample_pipeline_fits(const LayerNormShape& s, std::initializer_list<const void*> arrays) {
  return s.m > 1 && s.c % 4 == 0 && 1024 % s.c == 0 && aligned16(arrays);
}

// The counters of a launch, zeroed before it: the next ticket, and per sample the blocks whose
// sums are in and whether its statistics are written.
struct SampleCounters {
  unsigned* next_ticket;
  unsigned* done;   // [groups]
  unsigned* ready;  // [groups]
};

// The block's ticket as (sample, chunk).
struct SampleChunk {
  int64_t sample, chunk;
};
__device__ inline SampleChunk draw_ticket(const SampleCounters& counters, int64_t chunks) {
  __shared__ unsigned ticket;
  if (threadIdx.x == 0) ticket = atomicAdd(counters.next_ticket, 1u);
  __syncthreads();
  return {int64_t(ticket) / chunks, int64_t(ticket) % chunks};
}

// The block's float4 range of a chunk of `size` elements: [begin, end).
struct ChunkVecs {
  int64_t begin, end;
  __device__ ChunkVecs(int64_t chunk, int64_t size)
      : begin(chunk * (kSampleChunk / 4)), end(min(size / 4, begin + kSampleChunk / 4)) {}
  __device__ int64_t at(int j) const { return begin + threadIdx.x + 256 * j; }
};

// Calls f(i) for the first element i of each of the thread's float4s in chunk `chunk` of
// sample `sample` (samples of `size` elements).
template <class F>
__device__ void for_each_vec(int64_t sample, int64_t chunk, int64_t size, F f) {
  const ChunkVecs v(chunk, size);
#pragma unroll
  for (int j = 0; j < kSampleVecs; ++j) {
    if (v.at(j) >= v.end) break;
    f(sample * size + 4 * v.at(j));
  }
}

// Called by the whole block once thread 0 has written the block's partial of sample `s`:
// counts the block in, and in the sample's last block folds the sample's `chunks` partials
// (each thread a strided share, then block_sum2: a fixed order), calls finish(sum1, sum2) in
// thread 0 and raises ready[s].
template <class Finish>
__device__ void complete_sample(const SampleCounters& counters, int64_t s, int64_t chunks,
                                const double2* partial, Finish finish) {
  __shared__ bool last;
  if (threadIdx.x == 0) {
    __threadfence();  // the partial before the count
    last = atomicAdd(&counters.done[s], 1u) == unsigned(chunks - 1);
  }
  __syncthreads();
  if (!last) return;
  __threadfence();  // the count before the other blocks' partials
  double a = 0, b = 0;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    const double2 p = __ldcg(partial + s * chunks + k);  // from L2: other SMs wrote them
    a += p.x, b += p.y;
  }
  block_sum2(&a, &b);
  if (threadIdx.x == 0) {
    finish(a, b);
    __threadfence();  // the statistics before the flag
    atomicExch(&counters.ready[s], 1u);
  }
}

// The calling thread polls `counter` (written by other blocks' atomics) until it reaches
// `target`, sleeping `sleep_ns` between polls (a trap after kMaxReadyPolls: a lost hand-over),
// then fences, so that what those blocks wrote before counting is seen after it.
__device__ inline void poll_until(const unsigned* counter, unsigned target, unsigned sleep_ns) {
  const volatile unsigned* value = counter;
  for (uint32_t polls = 0; *value < target; ++polls) {
    if (polls == kMaxReadyPolls) __trap();
    __nanosleep(sleep_ns);
  }
  __threadfence();
}

// Thread 0 waits for sample s's statistics; the block's threads may read them after the
// barrier that follows (with __ldcg: another SM wrote them).
__device__ inline void wait_ready(const SampleCounters& counters, int64_t s) {
  if (threadIdx.x == 0) poll_until(counters.ready + s, 1, 100);
  __syncthreads();
}

__global__ void __launch_bounds__(256)
    layer_norm_sample_fwd(LayerNormShape s, int64_t chunks, const float* x, const float* gamma,
                          const float* beta, float eps, float* y, float* mean, float* rstd,
                          double2* partial, SampleCounters counters) {
  const SampleChunk t = draw_ticket(counters, chunks);
  const int64_t size = s.m * s.c;
  const int ch = 4 * threadIdx.x % s.c;
  if (t.sample < s.groups) {
    const ChunkVecs v(t.chunk, size);
    const float* xs = x + t.sample * size;
    float4 xv[kSampleVecs];
#pragma unroll
    for (int j = 0; j < kSampleVecs; ++j)  // the loads first: they need not wait on the adds
      xv[j] = v.at(j) < v.end ? load4(xs + 4 * v.at(j)) : make_float4(0, 0, 0, 0);
    double sum = 0, sumsq = 0;
#pragma unroll
    for (int j = 0; j < kSampleVecs; ++j)
      for (const double e : {xv[j].x, xv[j].y, xv[j].z, xv[j].w})
        sum += e, sumsq += e * e;
    block_sum2(&sum, &sumsq);
    if (threadIdx.x == 0) partial[t.sample * chunks + t.chunk] = make_double2(sum, sumsq);
    const double count = double(size);
    complete_sample(counters, t.sample, chunks, partial, [=](double a, double b) {
      const double mu = a / count, var = max(b / count - mu * mu, 0.0);
      mean[t.sample] = float(mu);
      rstd[t.sample] = float(1.0 / sqrt(var + double(eps)));
    });
  }
  if (t.sample == 0) return;
  const int64_t prev = t.sample - 1;
  wait_ready(counters, prev);
  const float mu = __ldcg(mean + prev), r = __ldcg(rstd + prev);
  const float4 ga = load4(gamma + ch), b = load4(beta + ch);
  for_each_vec(prev, t.chunk, size, [&](int64_t i) {
    const float4 e = load4_last_use(x + i);
    store4_streaming(y + i, make_float4((e.x - mu) * r * ga.x + b.x, (e.y - mu) * r * ga.y + b.y,
                                        (e.z - mu) * r * ga.z + b.z, (e.w - mu) * r * ga.w + b.w));
  });
}

// A block of 256 threads whose thread t holds sums for channels 4t % c .. 4t % c + 3 (c dividing
// 1024) in dgamma[t] and dbeta[t] (shared memory): writes each channel's total over the block,
// as (dgamma, dbeta), to out[0, c). Channels 4q .. 4q + 3 are those of threads q, q + c/4, ...:
// added in that order (deterministic).
__device__ void write_channel_sums(const float4* dgamma, const float4* dbeta, int c, float2* out) {
  for (int q = threadIdx.x; q < c / 4; q += 256) {
    float4 g = make_float4(0, 0, 0, 0), b = make_float4(0, 0, 0, 0);
    for (int k = q; k < 256; k += c / 4) {
      g.x += dgamma[k].x, g.y += dgamma[k].y, g.z += dgamma[k].z, g.w += dgamma[k].w;
      b.x += dbeta[k].x, b.y += dbeta[k].y, b.z += dbeta[k].z, b.w += dbeta[k].w;
    }
    out[4 * q] = make_float2(g.x, b.x), out[4 * q + 1] = make_float2(g.y, b.y);
    out[4 * q + 2] = make_float2(g.z, b.z), out[4 * q + 3] = make_float2(g.w, b.w);
  }
}

// Backward: step 1 sums g = dy * gamma and g * xhat over the chunk for the sample (double, as
// bwd_partials) and the thread's 4 channels' dy * xhat and dy (dgamma, dbeta), which the
// block adds per channel in a fixed order into channel_partial[sample * chunks + chunk]; the
// sample's last block writes means[s] = (mean of g, mean of g * xhat). Step 2 writes dx of the
// chunk a sample back.
__global__ void __launch_bounds__(256)
    layer_norm_sample_bwd(LayerNormShape s, int64_t chunks, const float* x, const float* gamma,
                          const float* mean, const float* rstd, const float* dy, float* dx,
                          double2* partial, float2* means, float2* channel_partial,
                          SampleCounters counters) {
  __shared__ float4 block_dgamma[256], block_dbeta[256];
  const SampleChunk t = draw_ticket(counters, chunks);
  const int64_t size = s.m * s.c;
  const int ch = 4 * threadIdx.x % s.c;
  const float4 ga = load4(gamma + ch);
  if (t.sample < s.groups) {
    const ChunkVecs v(t.chunk, size);
    const int64_t base = t.sample * size;
    float4 xv[kSampleVecs], dv[kSampleVecs];
#pragma unroll
    for (int j = 0; j < kSampleVecs; ++j) {
      const bool in = v.at(j) < v.end;
      xv[j] = in ? load4(x + base + 4 * v.at(j)) : make_float4(0, 0, 0, 0);
      dv[j] = in ? load4(dy + base + 4 * v.at(j)) : make_float4(0, 0, 0, 0);
    }
    const float mu = mean[t.sample], r = rstd[t.sample];
    double sum_g = 0, sum_gx = 0;
    float4 dgamma = make_float4(0, 0, 0, 0), dbeta = make_float4(0, 0, 0, 0);
#pragma unroll
    for (int j = 0; j < kSampleVecs; ++j) {
      if (v.at(j) >= v.end) break;
      const float xs[4] = {xv[j].x, xv[j].y, xv[j].z, xv[j].w};
      const float ds[4] = {dv[j].x, dv[j].y, dv[j].z, dv[j].w};
      const float gs[4] = {ga.x, ga.y, ga.z, ga.w};
      float xhat[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        xhat[q] = (xs[q] - mu) * r;
        const double g = double(ds[q]) * gs[q];
        sum_g += g;
        sum_gx += g * ((double(xs[q]) - mu) * r);  // in double, as bwd_partials
      }
      dgamma.x += ds[0] * xhat[0], dgamma.y += ds[1] * xhat[1];
      dgamma.z += ds[2] * xhat[2], dgamma.w += ds[3] * xhat[3];
      dbeta.x += ds[0], dbeta.y += ds[1], dbeta.z += ds[2], dbeta.w += ds[3];
    }
    block_dgamma[threadIdx.x] = dgamma, block_dbeta[threadIdx.x] = dbeta;
    block_sum2(&sum_g, &sum_gx);  // its barrier also orders the stores to the block arrays
    const int64_t at = t.sample * chunks + t.chunk;
    if (threadIdx.x == 0) partial[at] = make_double2(sum_g, sum_gx);
    write_channel_sums(block_dgamma, block_dbeta, s.c, channel_partial + at * s.c);
    const double count = double(size);
    complete_sample(counters, t.sample, chunks, partial, [=](double a, double b) {
      means[t.sample] = make_float2(float(a / count), float(b / count));
    });
  }
  if (t.sample == 0) return;
  const int64_t prev = t.sample - 1;
  wait_ready(counters, prev);
  const float2 m = __ldcg(means + prev);
  const float mu = mean[prev], r = rstd[prev];
  auto dx_of = [&](float xv, float dv, float gv) {
    return r * (dv * gv - m.x - (xv - mu) * r * m.y);
  };
  for_each_vec(prev, t.chunk, size, [&](int64_t i) {
    const float4 e = load4_last_use(x + i), d = load4_last_use(dy + i);
    store4_streaming(dx + i, make_float4(dx_of(e.x, d.x, ga.x), dx_of(e.y, d.y, ga.y),
                                         dx_of(e.z, d.z, ga.z), dx_of(e.w, d.w, ga.w)));
  });
}

// A one-launch call's chunks per sample and blocks, and its counters, zeroed on the stream
// (freed with release()).
struct SamplePipeline {
  int64_t chunks, blocks;
  SampleCounters counters;
  SamplePipeline(const LayerNormShape& s, cudaStream_t stream)
      : chunks((s.m * s.c + kSampleChunk - 1) / kSampleChunk), blocks((s.groups + 1) * chunks) {
    const size_t bytes = sizeof(unsigned) * (1 + 2 * size_t(s.groups));
    auto* storage = static_cast<unsigned*>(malloc_async(bytes, stream));
    CU3D_CUDA_CHECK(cudaMemsetAsync(storage, 0, bytes, stream));
    counters = {storage, storage + 1, storage + 1 + s.groups};
  }
  void release(cudaStream_t stream) const { free_async(counters.next_ticket, stream); }
};

// ---- per sample, resident in shared memory: each sample read once ------------------------------
// The one-launch kernels above count on L2 for their re-read of x (and dy), and ran at 53-66 %
// (forward) and 51-62 % (backward) of the copy bandwidth on an H100 (session 14): what reading
// twice from DRAM gives. Here the re-read comes from shared memory. A team of `team` blocks holds
// a sample in shared memory (x; backward x and dy), up to ~224 KB a block, each block a slice of
// whole 1024-element runs; all the grid's blocks are resident at once (a cooperative launch), so
// a team may wait for its members. For each of the team's samples (team index, + teams, ...) a
// block
//   1. copies its slice in (cp.async: all its 16-byte copies in flight at once, no registers
//      held, in four groups, each summed as it lands) and sums it (x and x^2 in double, as the
//      kernels above; backward: g = dy * gamma and g * xhat, and the thread's channels' dy * xhat
//      and dy, kept over all its samples);
//   2. posts its partial and waits until the team's `team` partials are in (team_sum);
//   3. folds them in rank order, the same bits in every block of the team; rank 0 writes them;
//   4. normalizes (backward: differentiates) its slice from shared memory and writes it out.
// DRAM traffic is then the op's own: x read and y written (8 bytes an element), backward x and
// dy read and dx written (12). Where a sample is larger than the shared memory of every block
// the device holds at once (conv1a), each block holds what fits of its slice and reads the rest
// in step 1 after the held part, and again in step 4 before it: only that rest is read twice,
// the nearest in time to its first read (the likeliest still in L2). Thread t owns float4s
// t + 256 j of its slice; slices start at multiples of 1024 elements and c divides 1024, so those
// are always channels 4t % c .. + 3 and a thread reads back only what it copied in (no barrier
// between the copy and the sums).

// The float4s of each array a thread of the partly held kernels has in flight when it reads what
// shared memory does not hold: 8 forward, 4 of x and 4 of dy backward (one block an SM there, so
// their registers cost no occupancy). The kernels that hold all their slice take 0: no such code.
constexpr int stream_batch(int arrays) {
  return 8 / arrays;
}

// The plan (layer_norm_plan.h) for s on this device, `held` and `partly_held` the kernels that
// hold all their slice and that stream the rest. H100, batch 32, forward: conv2a 112 blocks for
// one sample at a time (32 rounds), conv3b 4 teams of 28, conv4b 16 of 7, conv5b 32 of 5 (one
// round); backward (x and dy): conv3b 2 of 56, conv4b 8 of 14; partly held, one team of 131
// blocks: conv1a (51 MB a sample; 58 % of it held forward, 29 % backward) and conv2a's backward
// (51 MB of x and dy; 58 %). tests/cpu/test_layer_norm_plan.cpp checks these.
template <class Kernel>
ResidentPlan plan_on_this_device(const LayerNormShape& s, int arrays, Kernel* held,
                                 Kernel* partly_held) {
  return plan_resident(s.m * s.c / 4, s.groups, arrays, multiprocessor_count(),
                       max_shared_memory_per_block(), [&](int shared_bytes, bool partly) {
                         return co_resident_blocks(partly ? partly_held : held, kResidentThreads,
                                                   shared_bytes);
                       });
}

// A block's place in a resident launch: its team and rank, its slice [begin, end) of a sample's
// float4s, the thread's float4s in it (slots t + 256 j, j < mine) and of those the ones held in
// shared memory (j < held; array a's slots at shared + a * held_vecs).
struct ResidentSlice {
  int64_t team_index, rank, begin, end;
  int mine, held, held_vecs;
  float4* shared;
  uint32_t shared_at;  // `shared` as a shared-space address, for cp.async
  __device__ ResidentSlice(const ResidentPlan& plan, int64_t size4)
      : team_index(blockIdx.x / plan.team),
        rank(blockIdx.x % plan.team),
        begin(rank * plan.slice_vecs),
        end(min(size4, begin + plan.slice_vecs)),
        mine(threadIdx.x < end - begin ? int((end - begin - 1 - threadIdx.x) / kResidentThreads) + 1
                                       : 0),
        held(min(mine, plan.held_vecs / kResidentThreads)),
        held_vecs(plan.held_vecs),
        shared(reinterpret_cast<float4*>(ptx::dynamic_shared_memory())),
        shared_at(ptx::shared_address(shared)) {}

  __device__ int slot(int j) const { return int(threadIdx.x) + kResidentThreads * j; }

  // f(v, i) for the thread's held float4s j in [from, to): v the float4 of each array, i its
  // index in the sample.
  template <int Arrays, class F>
  __device__ void visit_held(F f, int from, int to) const {
    for (int j = from; j < min(held, to); ++j) {
      float4 v[Arrays];
#pragma unroll
      for (int a = 0; a < Arrays; ++a)
        v[a] = shared[a * held_vecs + slot(j)];
      f(v, begin + slot(j));
    }
  }

  // f(v, i) for the thread's float4s past the held ones, read from the sample's arrays `src`
  // (LastUse: for the last time, evict-first) Batch at a time, their loads in flight together.
  template <int Arrays, int Batch, bool LastUse, class F>
  __device__ void visit_streamed(const float* const (&src)[Arrays], F f) const {
    for (int j0 = held; j0 < mine; j0 += Batch) {
      float4 v[Batch][Arrays] = {};  // those past `mine` stay unread: zeros, not indeterminate
#pragma unroll
      for (int u = 0; u < Batch; ++u)
#pragma unroll
        for (int a = 0; a < Arrays; ++a)
          if (j0 + u < mine) {
            const float* p = src[a] + 4 * (begin + slot(j0 + u));
            v[u][a] = LastUse ? load4_last_use(p) : load4(p);
          }
#pragma unroll
      for (int u = 0; u < Batch; ++u)
        if (j0 + u < mine) f(v[u], begin + slot(j0 + u));
    }
  }

  // The first pass over the thread's float4s of the sample's arrays `src`: the held ones copied
  // into shared memory (cp.async, all in flight at once, in four groups, each visited by f as it
  // lands: the sums over the first run while the last are still in flight), then the others
  // (Batch > 0: the partly held kernels).
  template <int Arrays, int Batch, class F>
  __device__ void read(const float* const (&src)[Arrays], F f) const {
    constexpr int kGroups = 4;
    const int per_group = (held + kGroups - 1) / kGroups;
    for (int group = 0; group < kGroups; ++group) {
      for (int j = group * per_group; j < min(held, (group + 1) * per_group); ++j)
#pragma unroll
        for (int a = 0; a < Arrays; ++a)
          ptx::cp_async16(shared_at + 16 * uint32_t(a * held_vecs + slot(j)),
                          src[a] + 4 * (begin + slot(j)), 16);
      ptx::cp_async_commit();
    }
    ptx::cp_async_wait<3>();
    visit_held<Arrays>(f, 0, per_group);
    ptx::cp_async_wait<2>();
    visit_held<Arrays>(f, per_group, 2 * per_group);
    ptx::cp_async_wait<1>();
    visit_held<Arrays>(f, 2 * per_group, 3 * per_group);
    ptx::cp_async_wait<0>();
    visit_held<Arrays>(f, 3 * per_group, 4 * per_group);
    if constexpr (Batch > 0) visit_streamed<Arrays, Batch, false>(src, f);
  }

  // The second pass: the float4s not held first (read last by read(), so the likeliest still in
  // L2), then the held ones from shared memory.
  template <int Arrays, int Batch, class F>
  __device__ void reread(const float* const (&src)[Arrays], F f) const {
    if constexpr (Batch > 0) visit_streamed<Arrays, Batch, true>(src, f);
    visit_held<Arrays>(f, 0, held);
  }
};

// Posts this block's partial (thread 0's `mine`) at partial[rank], counts it in at *arrived, waits
// until the team's `team` partials are in, and returns their sum to every thread: warp 0 adds
// them in rank order, so every block of the team computes the same bits.
__device__ __forceinline__ double2 team_sum(double2 mine, double2* partial, unsigned* arrived,
                                            int64_t team, int64_t rank) {
  __shared__ double2 total;
  if (threadIdx.x == 0) {
    partial[rank] = mine;
    __threadfence();  // the partial before the count
    atomicAdd(arrived, 1u);
    poll_until(arrived, unsigned(team), 32);  // and the count before the others' partials
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    double a = 0, b = 0;
    for (int64_t k = threadIdx.x; k < team; k += 32) {
      const double2 p = __ldcg(partial + k);  // from L2: other SMs wrote them
      a += p.x, b += p.y;
    }
    a = warp_sum(a), b = warp_sum(b);
    if (threadIdx.x == 0) total = make_double2(a, b);
  }
  __syncthreads();
  return total;
}

template <int Batch>
__global__ void __launch_bounds__(kResidentThreads)
    layer_norm_resident_fwd(LayerNormShape s, ResidentPlan plan, const float* x, const float* gamma,
                            const float* beta, float eps, float* y, float* mean, float* rstd,
                            double2* partial, unsigned* arrived) {
  const int64_t size = s.m * s.c;
  const ResidentSlice me(plan, size / 4);
  const int ch = 4 * threadIdx.x % s.c;
  const float4 ga = load4(gamma + ch), be = load4(beta + ch);
  for (int64_t g = me.team_index; g < s.groups; g += plan.teams) {
    const float* xg = x + g * size;
    double sum = 0, sumsq = 0;
    me.read<1, Batch>({xg}, [&](const float4(&v)[1], int64_t) {
      const double e[4] = {v[0].x, v[0].y, v[0].z, v[0].w};
#pragma unroll
      for (int q = 0; q < 4; ++q)
        sum += e[q], sumsq += e[q] * e[q];
    });
    block_sum2(&sum, &sumsq);
    const double2 total = team_sum(make_double2(sum, sumsq), partial + g * plan.team, arrived + g,
                                   plan.team, me.rank);
    const double count = double(size), mu = total.x / count;
    const float mu_f = float(mu), r = float(1.0 / sqrt(max(total.y / count - mu * mu, 0.0) + eps));
    if (me.rank == 0 && threadIdx.x == 0) mean[g] = mu_f, rstd[g] = r;
    float* yg = y + g * size;
    me.reread<1, Batch>({xg}, [&](const float4(&v)[1], int64_t i) {
      const float4 e = v[0];
      store4_streaming(yg + 4 * i,
                       make_float4((e.x - mu_f) * r * ga.x + be.x, (e.y - mu_f) * r * ga.y + be.y,
                                   (e.z - mu_f) * r * ga.z + be.z, (e.w - mu_f) * r * ga.w + be.w));
    });
  }
}

// Backward: x and dy resident (x's slice, then dy's), the team's sums of g and g * xhat give the
// means of dx's formula; the thread's 4 channels' sums of dy * xhat and dy run over all the
// block's samples, then the block adds them per channel in a fixed order into
// channel_partial[block][c] (channel_finish_warps adds the blocks').
template <int Batch>
__global__ void __launch_bounds__(kResidentThreads)
    layer_norm_resident_bwd(LayerNormShape s, ResidentPlan plan, const float* x, const float* gamma,
                            const float* mean, const float* rstd, const float* dy, float* dx,
                            double2* partial, unsigned* arrived, float2* channel_partial) {
  const int64_t size = s.m * s.c;
  const ResidentSlice me(plan, size / 4);
  const int ch = 4 * threadIdx.x % s.c;
  const float4 ga = load4(gamma + ch);
  const float gs[4] = {ga.x, ga.y, ga.z, ga.w};
  float dgamma[4] = {0, 0, 0, 0}, dbeta[4] = {0, 0, 0, 0};
  for (int64_t g = me.team_index; g < s.groups; g += plan.teams) {
    const float mu = mean[g], r = rstd[g];
    const float *xg = x + g * size, *dyg = dy + g * size;
    double sum_g = 0, sum_gx = 0;
    me.read<2, Batch>({xg, dyg}, [&](const float4(&v)[2], int64_t) {
      const float xq[4] = {v[0].x, v[0].y, v[0].z, v[0].w};
      const float dq[4] = {v[1].x, v[1].y, v[1].z, v[1].w};
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const double gi = double(dq[q]) * gs[q];
        sum_g += gi;
        sum_gx += gi * ((double(xq[q]) - mu) * r);  // in double, as the kernels above
        dgamma[q] += dq[q] * ((xq[q] - mu) * r);
        dbeta[q] += dq[q];
      }
    });
    block_sum2(&sum_g, &sum_gx);
    const double2 total = team_sum(make_double2(sum_g, sum_gx), partial + g * plan.team,
                                   arrived + g, plan.team, me.rank);
    const double count = double(size);
    const float mg = float(total.x / count), mgx = float(total.y / count);
    auto dx_of = [&](float xv, float dv, float gv) {
      return r * (dv * gv - mg - (xv - mu) * r * mgx);
    };
    float* dxg = dx + g * size;
    me.reread<2, Batch>({xg, dyg}, [&](const float4(&v)[2], int64_t i) {
      const float4 xv = v[0], dv = v[1];
      store4_streaming(dxg + 4 * i, make_float4(dx_of(xv.x, dv.x, ga.x), dx_of(xv.y, dv.y, ga.y),
                                                dx_of(xv.z, dv.z, ga.z), dx_of(xv.w, dv.w, ga.w)));
    });
  }
  // The block's channel sums, through the slices' memory (at least 2 x 256 float4s).
  __syncthreads();  // every thread is done with its slices
  float4* block_dgamma = me.shared;
  float4* block_dbeta = me.shared + kResidentThreads;
  block_dgamma[threadIdx.x] = make_float4(dgamma[0], dgamma[1], dgamma[2], dgamma[3]);
  block_dbeta[threadIdx.x] = make_float4(dbeta[0], dbeta[1], dbeta[2], dbeta[3]);
  __syncthreads();
  write_channel_sums(block_dgamma, block_dbeta, s.c, channel_partial + int64_t(blockIdx.x) * s.c);
}

// A resident launch's counters (a team's arrivals per sample, zeroed on the stream), its team
// partials (per sample and rank), and for the backward the blocks' channel partials: one
// allocation, so that a small layer's call is not a string of allocator calls; freed with
// release().
struct ResidentScratch {
  double2* partial;
  float2* channel_partial;  // [blocks][c], backward only
  unsigned* arrived;
  ResidentScratch(const LayerNormShape& s, const ResidentPlan& plan, bool backward,
                  cudaStream_t stream) {
    const size_t partials = sizeof(double2) * s.groups * plan.team;
    const size_t channels = backward ? sizeof(float2) * plan.blocks() * s.c : 0;
    auto* bytes = static_cast<unsigned char*>(
        malloc_async(partials + channels + sizeof(unsigned) * s.groups, stream));
    partial = reinterpret_cast<double2*>(bytes);
    channel_partial = reinterpret_cast<float2*>(bytes + partials);
    arrived = reinterpret_cast<unsigned*>(bytes + partials + channels);
    CU3D_CUDA_CHECK(cudaMemsetAsync(arrived, 0, sizeof(unsigned) * s.groups, stream));
  }
  void release(cudaStream_t stream) const { free_async(partial, stream); }
};

// ---- per-position layer norm: groups of one row (m = 1) of c <= 512 channels, c % 4 == 0 -------
// A team of T lanes (8, 16 or 32: the smallest that gives each lane at most 4 float4s) holds a
// row in registers, lane l of the team owning channels 4 (l + T k) .. +3. So x (and dy) are read
// once, y (dx) written once, against the generic path's two reads of x (three of x and dy in
// backward) and its block-wide reductions over 64-512 elements. Statistics are two-pass (mean,
// then squared deviations) in double over the registers, reduced with team shuffles.
constexpr int kRowVecs = 4;  // float4s per lane: c <= 4 * 32 * kRowVecs = 512

template <int T>
__device__ inline double team_sum(double v) {
  for (int o = T / 2; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The team's share of a row: which of its kRowVecs float4s lane `l` owns, and their channels.
template <int T>
struct RowSlots {
  int c, lane;
  __device__ int channel(int k) const { return 4 * (lane + T * k); }
  __device__ bool owns(int k) const { return channel(k) < c; }
};

template <int T>
__global__ void __launch_bounds__(256)
    layer_norm_rows_fwd(int64_t rows, int c, const float* x, const float* gamma, const float* beta,
                        float eps, float* y, float* mean, float* rstd) {
  const int64_t teams = int64_t(gridDim.x) * (blockDim.x / T);
  const int64_t first = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / T;
  // The loop runs while any team of the warp has a row (the shuffles need every lane); a team
  // past the end computes on zeros and writes nothing.
  for (int64_t r = first; r - first % (32 / T) < rows; r += teams) {
    const RowSlots<T> slot{r < rows ? c : 0, int(threadIdx.x % T)};
    float4 v[kRowVecs];
    double sum = 0;
#pragma unroll
    for (int k = 0; k < kRowVecs; ++k) {
      v[k] = slot.owns(k) ? load4(x + r * c + slot.channel(k)) : make_float4(0, 0, 0, 0);
      sum += double(v[k].x) + v[k].y + v[k].z + v[k].w;
    }
    const double mu = team_sum<T>(sum) / c;
    double sq = 0;
#pragma unroll
    for (int k = 0; k < kRowVecs; ++k)
      if (slot.owns(k))
        for (float e : {v[k].x, v[k].y, v[k].z, v[k].w})
          sq += (e - mu) * (e - mu);
    const float m = float(mu), rs = float(1.0 / sqrt(team_sum<T>(sq) / c + double(eps)));
    if (slot.lane == 0 && r < rows) mean[r] = m, rstd[r] = rs;
#pragma unroll
    for (int k = 0; k < kRowVecs; ++k) {
      if (!slot.owns(k)) continue;
      const int ch = slot.channel(k);
      const float4 g = load4(gamma + ch), b = load4(beta + ch);
      store4(y + r * c + ch,
             make_float4((v[k].x - m) * rs * g.x + b.x, (v[k].y - m) * rs * g.y + b.y,
                         (v[k].z - m) * rs * g.z + b.z, (v[k].w - m) * rs * g.w + b.w));
    }
  }
}

// Backward: dx per row from the team's sums of g = dy * gamma and g * xhat; the lane's own
// channels' sums of dy * xhat and dy over its rows, kept in the team's row of shared memory
// (team_partial[team][ch] = (dgamma, dbeta), each lane adding to its own channels: no races, the
// same order as in registers), then added over the block's teams in a fixed order, give one
// (dgamma, dbeta) partial per block for channel_finish_warps. In registers the sums took 32 more
// (108 in all: 2 blocks of 256 an SM, 16 warps to keep the loads in flight); in shared memory
// they cost a 32-byte read and write per float4 of the row.
template <int T>
__global__ void __launch_bounds__(256)
    layer_norm_rows_bwd(int64_t rows, int c, const float* x, const float* gamma, const float* mean,
                        const float* rstd, const float* dy, float* dx, float2* block_partial) {
  extern __shared__ float2 team_partial[];  // [teams per block][c]
  const int team = threadIdx.x / T, teams_per_block = blockDim.x / T;
  const int64_t teams = int64_t(gridDim.x) * teams_per_block;
  // The lane's channels ch .. ch + 3 of slot k: (dgamma, dbeta) pairs at sums[k][0] (ch, ch + 1)
  // and sums[k][1] (ch + 2, ch + 3).
  auto* sums = reinterpret_cast<float4*>(team_partial + int64_t(team) * c);
  const RowSlots<T> lane_slots{c, int(threadIdx.x % T)};
#pragma unroll
  for (int k = 0; k < kRowVecs; ++k) {
    if (!lane_slots.owns(k)) continue;
    sums[lane_slots.channel(k) / 2] = sums[lane_slots.channel(k) / 2 + 1] = make_float4(0, 0, 0, 0);
  }
  const int64_t first = blockIdx.x * int64_t(teams_per_block) + team;
  for (int64_t r = first; r - first % (32 / T) < rows; r += teams) {  // as the forward's loop
    const RowSlots<T> slot{r < rows ? c : 0, int(threadIdx.x % T)};
    const float m = r < rows ? mean[r] : 0.f, rs = r < rows ? rstd[r] : 0.f;
    float4 xhat[kRowVecs], g[kRowVecs];
    double sum_g = 0, sum_gx = 0;
#pragma unroll
    for (int k = 0; k < kRowVecs; ++k) {
      if (!slot.owns(k)) continue;
      const int ch = slot.channel(k);
      const float4 xv = load4(x + r * c + ch), d = load4(dy + r * c + ch), ga = load4(gamma + ch);
      xhat[k] = make_float4((xv.x - m) * rs, (xv.y - m) * rs, (xv.z - m) * rs, (xv.w - m) * rs);
      g[k] = make_float4(d.x * ga.x, d.y * ga.y, d.z * ga.z, d.w * ga.w);
      sum_g += double(g[k].x) + g[k].y + g[k].z + g[k].w;
      sum_gx += double(g[k].x) * xhat[k].x + double(g[k].y) * xhat[k].y +
                double(g[k].z) * xhat[k].z + double(g[k].w) * xhat[k].w;
      float4 lo = sums[ch / 2], hi = sums[ch / 2 + 1];
      lo.x += d.x * xhat[k].x, lo.y += d.x, lo.z += d.y * xhat[k].y, lo.w += d.y;
      hi.x += d.z * xhat[k].z, hi.y += d.z, hi.z += d.w * xhat[k].w, hi.w += d.w;
      sums[ch / 2] = lo, sums[ch / 2 + 1] = hi;
    }
    const float mg = float(team_sum<T>(sum_g) / c), mgx = float(team_sum<T>(sum_gx) / c);
#pragma unroll
    for (int k = 0; k < kRowVecs; ++k) {
      if (!slot.owns(k)) continue;
      store4(
          dx + r * c + slot.channel(k),
          make_float4(rs * (g[k].x - mg - xhat[k].x * mgx), rs * (g[k].y - mg - xhat[k].y * mgx),
                      rs * (g[k].z - mg - xhat[k].z * mgx), rs * (g[k].w - mg - xhat[k].w * mgx)));
    }
  }
  __syncthreads();
  for (int ch = threadIdx.x; ch < c; ch += blockDim.x) {
    float2 total = make_float2(0.f, 0.f);
    for (int t = 0; t < teams_per_block; ++t)
      total.x += team_partial[int64_t(t) * c + ch].x,
          total.y += team_partial[int64_t(t) * c + ch].y;
    block_partial[int64_t(blockIdx.x) * c + ch] = total;
  }
}

// Whether the per-position kernels take s (and its arrays, all 16-byte aligned).
bool rows_path(const LayerNormShape& s, std::initializer_list<const void*> arrays) {
  return s.m == 1 && s.c % 4 == 0 && s.c <= 4 * 32 * kRowVecs && aligned16(arrays);
}

// The team size for c channels: the smallest of 8, 16, 32 lanes with at most kRowVecs float4s
// each.
int team_lanes(int c) {
  const int vecs = c / 4;
  return vecs <= 8 * kRowVecs ? 8 : vecs <= 16 * kRowVecs ? 16 : 32;
}

// Calls launch(std::integral_constant<int, T>) with the team size for c channels.
template <class Launch>
void with_team_lanes(int c, Launch launch) {
  switch (team_lanes(c)) {
    case 8:
      return launch(std::integral_constant<int, 8>());
    case 16:
      return launch(std::integral_constant<int, 16>());
    default:
      return launch(std::integral_constant<int, 32>());
  }
}

std::string describe(const char* op, const LayerNormShape& s) {
  return fmt::format("{} (groups {}, m {}, c {})", op, s.groups, s.m, s.c);
}

// The resident plan where `path` allows it and the device's blocks can hold slices of s's
// `arrays` arrays, else none (the pipelined kernels); throws where `path` demands it but the
// shape (`per_sample`: the one-launch kernels' shapes) or the device does not allow it. `held` and
// `partly_held`: the kernel that holds all of its slice and the one that streams the rest.
template <class Kernel>
ResidentPlan choose_resident(const LayerNormShape& s, bool per_sample, int arrays, Kernel* held,
                             Kernel* partly_held, SampleNormPath path, const char* op) {
  if (path == SampleNormPath::pipelined || !per_sample) {
    CU3D_CHECK(path != SampleNormPath::resident,
               "{}: the resident kernels take groups of several positions with c a multiple of 4 "
               "dividing 1024 and 16-byte aligned arrays; take SampleNormPath::automatic",
               describe(op, s));
    return {};
  }
  const ResidentPlan plan = plan_on_this_device(s, arrays, held, partly_held);
  CU3D_CHECK(plan.fits() || path != SampleNormPath::resident,
             "{}: this device's blocks have no room for a slice of 1024 elements of {} arrays "
             "in shared memory ({} bytes a block); take SampleNormPath::automatic or pipelined",
             describe(op, s), arrays, max_shared_memory_per_block());
  return plan;
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
  launch_group_finish(
      s.groups, chunks, partial,
      [=] __device__(int64_t g, double sum, double sumsq) {
        const double mu = sum / count;
        const double var = std::max(sumsq / count - mu * mu, 0.0);
        mean[g] = float(mu);
        rstd[g] = float(1.0 / sqrt(var + double(eps)));
      },
      stream);
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
                    float eps, float* y, float* mean, float* rstd, cudaStream_t stream,
                    SampleNormPath path) {
  const bool per_sample = sample_pipeline_fits(s, {x, gamma, beta, y});
  constexpr int kBatch = stream_batch(1);
  const ResidentPlan plan =
      choose_resident(s, per_sample, 1, layer_norm_resident_fwd<0>, layer_norm_resident_fwd<kBatch>,
                      path, "layer_norm_fwd");
  if (plan.fits()) {
    const ResidentScratch scratch(s, plan, false, stream);
    launch_co_resident(
        plan.partly_held() ? layer_norm_resident_fwd<kBatch> : layer_norm_resident_fwd<0>,
        plan.blocks(), kResidentThreads, plan.shared_bytes, stream, s, plan, x, gamma, beta, eps, y,
        mean, rstd, scratch.partial, scratch.arrived);
    check_launch(describe("layer_norm_fwd", s));
    scratch.release(stream);
    return;
  }
  if (rows_path(s, {x, gamma, beta, y})) {
    with_team_lanes(s.c, [&](auto team) {
      constexpr int T = decltype(team)::value;
      layer_norm_rows_fwd<T><<<grid_stride_blocks(s.groups * T), 256, 0, stream>>>(
          s.groups, s.c, x, gamma, beta, eps, y, mean, rstd);
    });
    check_launch(describe("layer_norm_fwd", s));
    return;
  }
  if (per_sample) {
    const SamplePipeline pipe(s, stream);
    auto* partial =
        static_cast<double2*>(malloc_async(sizeof(double2) * s.groups * pipe.chunks, stream));
    layer_norm_sample_fwd<<<unsigned(pipe.blocks), 256, 0, stream>>>(
        s, pipe.chunks, x, gamma, beta, eps, y, mean, rstd, partial, pipe.counters);
    check_launch(describe("layer_norm_fwd", s));
    free_async(partial, stream);
    pipe.release(stream);
    return;
  }
  layer_norm_stats(s, x, eps, mean, rstd, stream);
  const int64_t size = s.m * s.c, n = s.size();
  const int c = s.c;
  if (vec4_fits(n, c, {x, gamma, beta, y})) {
    elementwise_vec4<<<grid_stride_blocks(n / 4), 256, 0, stream>>>(
        int(n / 4), int(size / 4), c / 4, [=] __device__(int i, int g, int ch) {
          const float4 v = load4(x + 4 * int64_t(i)), ga = load4(gamma + ch), b = load4(beta + ch);
          const float mu = mean[g], r = rstd[g];
          store4(y + 4 * int64_t(i),
                 make_float4((v.x - mu) * r * ga.x + b.x, (v.y - mu) * r * ga.y + b.y,
                             (v.z - mu) * r * ga.z + b.z, (v.w - mu) * r * ga.w + b.w));
        });
  } else {
    elementwise<<<grid_stride_blocks(n), 256, 0, stream>>>(n, [=] __device__(int64_t i) {
      const int64_t g = i / size;
      const int ch = int(i % c);
      y[i] = (x[i] - mean[g]) * rstd[g] * gamma[ch] + beta[ch];
    });
  }
  check_launch(describe("layer_norm_fwd", s));
}

namespace {

// relu(layer_norm(x)) of V consecutive channels ch.. of a position, group = position / m. With
// V = 4 (ch a multiple of 4, x, gamma and beta 16-byte aligned) x, gamma and beta are read as
// one 16-byte load each. The pool's value_at: `inside` (window_max) does not matter to a read.
struct NormReluAt {
  const float *x, *gamma, *beta, *mean, *rstd;
  int64_t m;
  int c;
  template <int V, class Index>
  __device__ void operator()(Index position, int ch, float (&v)[V], bool /*inside*/ = true) const {
    const Index g = position / Index(m);
    const float mu = mean[g], r = rstd[g];
    float xv[V], gv[V], bv[V];
    load_vec(x + int64_t(position) * c + ch, xv);
    load_vec(gamma + ch, gv);
    load_vec(beta + ch, bv);
#pragma unroll
    for (int e = 0; e < V; ++e)
      v[e] = fmaxf((xv[e] - mu) * r * gv[e] + bv[e], 0.f);
  }
};

// NormReluAt that also keeps what it computes in z (the training block's saved ReLU output),
// for pools whose every input position lies in exactly one window: each is written once (not
// again where window_max repeats it for a padded one, `inside` false).
struct NormReluKeptAt {
  NormReluAt norm;
  float* z;
  template <int V, class Index>
  __device__ void operator()(Index position, int ch, float (&v)[V], bool inside) const {
    norm.operator()<V>(position, ch, v);
    if (inside) store_vec(z + int64_t(position) * norm.c + ch, v);
  }
};

// Reads V consecutive channels ch.. of a position of a (positions, c) array.
struct ArrayAt {
  const float* a;
  int c;
  template <int V, class Index>
  __device__ void operator()(Index position, int ch, float (&v)[V], bool /*inside*/) const {
    load_vec(a + int64_t(position) * c + ch, v);
  }
};

// One thread per pooled output (V = 1), or per 4 consecutive channels of one (V = 4: c a
// multiple of 4; one 16-byte load per window position and array, as maxpool3d_fwd's vec4
// kernel, which took the plain pool from 56 % to 82 % of copy bandwidth): the max of the window
// of `value(position, channel, v)`, padded positions excluded (the pool's rule; window_max, which
// unrolls windows of compile-time size kD x kH x kW > 0). ReLU outputs are never NaN for finite
// inputs. Index is int when every position and output index fits (32-bit divisions, several
// times cheaper than 64-bit ones), else int64_t.
template <int kD, int kH, int kW, int V, class Index, class Value>
__global__ void __launch_bounds__(256) pool_of(Pool3dShape p, Value value, float* y, Index total) {
  const int cv = p.c / V;
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < total;
       i += Index(gridDim.x) * blockDim.x) {
    const int ch = int(i % cv) * V;
    float best[V];
    window_max<kD, kH, kW, V, Index>(
        p, pool_window(p, i / cv),
        [&](Index position, float(&v)[V], bool inside) {
          value.template operator()<V>(position, ch, v, inside);
        },
        best);
    store_vec(y + int64_t(i) * V, best);
  }
}

// Launches pool_of with 32-bit indices when the inputs, the outputs and the grid-stride steps
// all fit.
template <int kD, int kH, int kW, int V, class Value>
void launch_pool_of_width(const Pool3dShape& p, Value value, float* y, cudaStream_t stream) {
  const int64_t total = p.output_size() / V;
  const int blocks = grid_stride_blocks(total);
  if (std::max(p.output_size(), p.input_size()) + int64_t(blocks) * 256 < (int64_t(1) << 31)) {
    pool_of<kD, kH, kW, V, int><<<blocks, 256, 0, stream>>>(p, value, y, int(total));
  } else {
    pool_of<kD, kH, kW, V, int64_t><<<blocks, 256, 0, stream>>>(p, value, y, total);
  }
}

// 4 channels per thread, and C3D's windows unrolled, when c and the `aligned` pointers allow it.
template <class Value>
void launch_pool_of(const Pool3dShape& p, Value value, float* y, cudaStream_t stream,
                    std::initializer_list<const void*> aligned) {
  if (p.c % 4 == 0 && aligned16({y}) && aligned16(aligned)) {
    dispatch_window(p, [&](auto kd, auto kh, auto kw) {
      launch_pool_of_width<decltype(kd)::value, decltype(kh)::value, decltype(kw)::value, 4>(
          p, value, y, stream);
    });
  } else {
    launch_pool_of_width<0, 0, 0, 1>(p, value, y, stream);
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
  if (windows_disjoint(p) && windows_cover_input(p)) {
    // The pool visits every input once: it writes z on the way (|x| + |z| + |y| bytes, one
    // launch) instead of a pass writing z and the pool reading it back (|z| bytes more).
    launch_pool_of(p, NormReluKeptAt{norm, z}, y, stream, {x, gamma, beta, z});
    check_launch(what);
    return;
  }
  const int64_t n = p.input_size();
  const int c = p.c;
  if (vec4_fits(n, c, {x, gamma, beta, z})) {
    elementwise_vec4<<<grid_stride_blocks(n / 4), 256, 0, stream>>>(
        int(n / 4), c / 4, c / 4, [=] __device__(int i, int position, int ch) {
          float v[4];
          norm.operator()<4>(position, ch, v);
          store4(z + 4 * int64_t(i), make_float4(v[0], v[1], v[2], v[3]));
        });
  } else {
    elementwise<<<grid_stride_blocks(n), 256, 0, stream>>>(n, [=] __device__(int64_t i) {
      float v[1];
      norm.operator()<1>(i / c, int(i % c), v);
      z[i] = v[0];
    });
  }
  check_launch(what);
  launch_pool_of(p, ArrayAt{z, p.c}, y, stream, {z});
  check_launch(what);
}

void layer_norm_bwd(const LayerNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                    cudaStream_t stream, SampleNormPath path) {
  const std::string what = describe("layer_norm_bwd", s);
  const bool per_sample = sample_pipeline_fits(s, {x, gamma, dy, dx});
  constexpr int kBatch = stream_batch(2);
  const ResidentPlan plan =
      choose_resident(s, per_sample, 2, layer_norm_resident_bwd<0>, layer_norm_resident_bwd<kBatch>,
                      path, "layer_norm_bwd");
  if (plan.fits()) {
    const ResidentScratch scratch(s, plan, true, stream);
    launch_co_resident(
        plan.partly_held() ? layer_norm_resident_bwd<kBatch> : layer_norm_resident_bwd<0>,
        plan.blocks(), kResidentThreads, plan.shared_bytes, stream, s, plan, x, gamma, mean, rstd,
        dy, dx, scratch.partial, scratch.arrived, scratch.channel_partial);
    check_launch(what);
    channel_finish_warps<<<(s.c + 7) / 8, 256, 0, stream>>>(s.c, plan.blocks(),
                                                            scratch.channel_partial, dgamma, dbeta);
    check_launch(what);
    scratch.release(stream);
    return;
  }
  if (rows_path(s, {x, gamma, dy, dx})) {
    // As many blocks as the device holds at once (3 an SM on an H100: 76 registers), a fixed
    // number per device, so the channel sums add in a fixed order.
    int blocks = 0;
    float2* partial = nullptr;
    with_team_lanes(s.c, [&](auto team) {
      constexpr int T = decltype(team)::value;
      const int shared_bytes = int(sizeof(float2)) * (256 / T) * s.c;
      const int resident = co_resident_blocks(layer_norm_rows_bwd<T>, 256, shared_bytes);
      blocks = int(std::clamp<int64_t>((s.groups * T + 255) / 256, 1, std::max(resident, 1)));
      partial = static_cast<float2*>(malloc_async(sizeof(float2) * blocks * s.c, stream));
      layer_norm_rows_bwd<T><<<blocks, 256, shared_bytes, stream>>>(s.groups, s.c, x, gamma, mean,
                                                                    rstd, dy, dx, partial);
    });
    check_launch(what);
    channel_finish_warps<<<(s.c + 7) / 8, 256, 0, stream>>>(s.c, blocks, partial, dgamma, dbeta);
    check_launch(what);
    free_async(partial, stream);
    return;
  }
  if (per_sample) {
    const SamplePipeline pipe(s, stream);
    const int64_t chunks = s.groups * pipe.chunks;
    auto* partial = static_cast<double2*>(malloc_async(sizeof(double2) * chunks, stream));
    auto* means = static_cast<float2*>(malloc_async(sizeof(float2) * s.groups, stream));
    auto* cpartial = static_cast<float2*>(malloc_async(sizeof(float2) * chunks * s.c, stream));
    layer_norm_sample_bwd<<<unsigned(pipe.blocks), 256, 0, stream>>>(
        s, pipe.chunks, x, gamma, mean, rstd, dy, dx, partial, means, cpartial, pipe.counters);
    check_launch(what);
    // A chunk's channel partials are 8 bytes a channel for its 8192 elements, 50 K chunks on
    // conv1a: too many for channel_finish_warps' one warp per channel alone.
    channel_sums(
        s.c, chunks, [=] __device__(int64_t r, int ch) { return cpartial[r * s.c + ch]; }, dgamma,
        dbeta, what, stream);
    free_async(cpartial, stream);
    free_async(means, stream);
    free_async(partial, stream);
    pipe.release(stream);
    return;
  }
  const int64_t size = s.m * s.c, n = s.size();
  const double count = double(size);
  // The first pass: the group sums, and with bwd_partials the channel sums too. Its chunks: about
  // 4 blocks per SM in all, each a multiple of 512 elements (kChunk without it).
  const bool fused = bwd_partials_fit(s);
  int64_t chunks = chunks_of(s), chunk = kChunk;
  if (fused) {
    const int64_t wanted =
        std::max<int64_t>(1, (4 * multiprocessor_count() + s.groups - 1) / s.groups);
    chunk = ((size + wanted - 1) / wanted + kBwdChunkAlign - 1) / kBwdChunkAlign * kBwdChunkAlign;
    chunks = (size + chunk - 1) / chunk;
  }
  const int64_t blocks = s.groups * chunks;
  auto* partial = static_cast<double2*>(malloc_async(sizeof(double2) * blocks, stream));
  // Per group: mean of g = dy * gamma and of g * xhat, kept in `means` (2 floats per group).
  auto* means = static_cast<float2*>(malloc_async(sizeof(float2) * s.groups, stream));
  float2* cpartial = nullptr;
  if (fused) {
    cpartial = static_cast<float2*>(malloc_async(sizeof(float2) * blocks * s.c, stream));
    bwd_partials<<<unsigned(blocks), 256, 0, stream>>>(s, chunks, chunk, x, dy, gamma, mean, rstd,
                                                       partial, cpartial);
  } else {
    group_partials<<<unsigned(blocks), 256, 0, stream>>>(
        s, chunks,
        [=] __device__(int64_t i, int ch, int64_t g) {
          const double gi = double(dy[i]) * gamma[ch];
          const double xhat = (double(x[i]) - mean[g]) * rstd[g];
          return make_double2(gi, gi * xhat);
        },
        partial);
  }
  check_launch(what);
  launch_group_finish(
      s.groups, chunks, partial,
      [=] __device__(int64_t g, double sum_g, double sum_gx) {
        means[g] = make_float2(float(sum_g / count), float(sum_gx / count));
      },
      stream);
  check_launch(what);
  const int c = s.c;
  if (vec4_fits(n, c, {x, gamma, dy, dx})) {
    elementwise_vec4<<<grid_stride_blocks(n / 4), 256, 0, stream>>>(
        int(n / 4), int(size / 4), c / 4, [=] __device__(int i, int g, int ch) {
          const float4 v = load4(x + 4 * int64_t(i)), d = load4(dy + 4 * int64_t(i));
          const float4 ga = load4(gamma + ch);
          const float mu = mean[g], r = rstd[g], mg = means[g].x, mgx = means[g].y;
          auto dx_of = [&](float xv, float dv, float gv) {
            return r * (dv * gv - mg - (xv - mu) * r * mgx);
          };
          store4(dx + 4 * int64_t(i), make_float4(dx_of(v.x, d.x, ga.x), dx_of(v.y, d.y, ga.y),
                                                  dx_of(v.z, d.z, ga.z), dx_of(v.w, d.w, ga.w)));
        });
  } else {
    elementwise<<<grid_stride_blocks(n), 256, 0, stream>>>(n, [=] __device__(int64_t i) {
      const int64_t g = i / size;
      const int ch = int(i % c);
      const float xhat = (x[i] - mean[g]) * rstd[g];
      dx[i] = rstd[g] * (dy[i] * gamma[ch] - means[g].x - xhat * means[g].y);
    });
  }
  check_launch(what);

  if (fused) {
    channel_finish_warps<<<(s.c + 7) / 8, 256, 0, stream>>>(s.c, blocks, cpartial, dgamma, dbeta);
    check_launch(what);
    free_async(cpartial, stream);
  } else {
    channel_sums(
        s.c, s.rows(),
        [=] __device__(int64_t r, int ch) {
          const int64_t g = r / s.m, i = r * s.c + ch;
          const float xhat = (x[i] - mean[g]) * rstd[g];
          return make_float2(dy[i] * xhat, dy[i]);
        },
        dgamma, dbeta, what, stream);
  }
  free_async(means, stream);
  free_async(partial, stream);
}

}  // namespace cu3d::cuda
