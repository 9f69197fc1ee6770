// conv3d version 1 (naive, one thread per output element) and the host helpers shared by the
// version-2 passes in conv3d_{fwd,bwd_data,bwd_filter}.cu.
#include "kernels/cuda/conv3d.cuh"

#include <algorithm>

#include <cuda_bf16.h>
#include <fmt/format.h>

#include "kernels/cuda/conv3d_igemm_launch.cuh"
#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {

namespace igemm {

SplitPlan split_tiles(int64_t tiles, int64_t blocks_mn) {
  return split_k(tiles, blocks_mn, multiprocessor_count());
}

SplitPlan plan_splits(int64_t r, Precision p, int64_t blocks_mn, bool allow_split) {
  const int64_t per_tile = kBKW * (p == Precision::bf16 ? 2 : 1);
  const int64_t tiles = std::max<int64_t>(1, (r + per_tile - 1) / per_tile);
  return allow_split ? split_tiles(tiles, blocks_mn) : SplitPlan{int(tiles), 1};
}

namespace {

// Memory-bound: reads splits * count floats, writes count.
__global__ void __launch_bounds__(256)
    sum_splits_kernel(const float* partial, int splits, int64_t count, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < splits; ++s)
      acc += partial[s * count + i];
    out[i] = acc;
  }
}

}  // namespace

void sum_splits(const float* partial, int splits, int64_t count, float* out, cudaStream_t stream) {
  const int blocks = int(std::min<int64_t>((count + 255) / 256, 8 * multiprocessor_count()));
  sum_splits_kernel<<<blocks, 256, 0, stream>>>(partial, splits, count, out);
  check_launch(fmt::format("conv3d split-K sum ({} splits of {})", splits, count));
}

}  // namespace igemm

// ---- version 1 -------------------------------------------------------------------------------
namespace {

// The operand rounding of version 2, so both versions compute the same function.
__device__ inline float round_operand(float v, Precision p) {
  if (p == Precision::bf16) return __bfloat162float(__float2bfloat16_rn(v));
  if (p == Precision::tf32) return __uint_as_float(ptx::to_tf32(v));
  return v;
}

// Input coordinate of output coordinate `o` and tap `t` along one axis, or -1 in the padding.
__device__ inline int input_coord(int o, int stride, int pad, int t, int extent) {
  const int i = o * stride - pad + t;
  return i >= 0 && i < extent ? i : -1;
}

// 256 threads: a plain 1D grid; nothing here depends on the block size.
__global__ void __launch_bounds__(256)
    conv3d_fwd_naive_kernel(Conv3dShape s, const float* x, const float* w, const float* bias,
                            float* y, Precision p, int64_t total) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int k = int(i % s.k);
  int64_t pix = i / s.k;
  const int ox = int(pix % s.out.w), oy = int(pix / s.out.w % s.out.h);
  const int oz = int(pix / s.out.w / s.out.h % s.out.d), n = int(pix / s.out.w / s.out.h / s.out.d);
  float acc = 0.f;
  for (int td = 0; td < s.kernel.d; ++td) {
    const int z = input_coord(oz, s.stride.d, s.pad_before.d, td, s.in.d);
    for (int th = 0; th < s.kernel.h; ++th) {
      const int yy = input_coord(oy, s.stride.h, s.pad_before.h, th, s.in.h);
      for (int tw = 0; tw < s.kernel.w; ++tw) {
        const int xx = input_coord(ox, s.stride.w, s.pad_before.w, tw, s.in.w);
        if (z < 0 || yy < 0 || xx < 0) continue;
        const float* xp = x + (((int64_t(n) * s.in.d + z) * s.in.h + yy) * s.in.w + xx) * s.c;
        const float* wp =
            w + (((int64_t(k) * s.kernel.d + td) * s.kernel.h + th) * s.kernel.w + tw) * s.c;
        for (int c = 0; c < s.c; ++c)
          acc += round_operand(xp[c], p) * round_operand(wp[c], p);
      }
    }
  }
  y[i] = acc + (bias ? bias[k] : 0.f);
}

__global__ void __launch_bounds__(256)
    conv3d_bwd_data_naive_kernel(Conv3dShape s, const float* dy, const float* w, float* dx,
                                 Precision p, int64_t total) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int c = int(i % s.c);
  int64_t pix = i / s.c;
  const int ix = int(pix % s.in.w), iy = int(pix / s.in.w % s.in.h);
  const int iz = int(pix / s.in.w / s.in.h % s.in.d), n = int(pix / s.in.w / s.in.h / s.in.d);
  float acc = 0.f;
  // Every output position o with o * stride - pad + t == i along each axis.
  for (int td = 0; td < s.kernel.d; ++td)
    for (int th = 0; th < s.kernel.h; ++th)
      for (int tw = 0; tw < s.kernel.w; ++tw) {
        const int nz = iz + s.pad_before.d - td, ny = iy + s.pad_before.h - th,
                  nx = ix + s.pad_before.w - tw;
        if (nz < 0 || ny < 0 || nx < 0 || nz % s.stride.d || ny % s.stride.h || nx % s.stride.w)
          continue;
        const int oz = nz / s.stride.d, oy = ny / s.stride.h, ox = nx / s.stride.w;
        if (oz >= s.out.d || oy >= s.out.h || ox >= s.out.w) continue;
        const float* dyp = dy + (((int64_t(n) * s.out.d + oz) * s.out.h + oy) * s.out.w + ox) * s.k;
        for (int k = 0; k < s.k; ++k) {
          const float wv =
              w[((((int64_t(k) * s.kernel.d + td) * s.kernel.h + th) * s.kernel.w + tw) * s.c) + c];
          acc += round_operand(dyp[k], p) * round_operand(wv, p);
        }
      }
  dx[i] = acc;
}

// One thread per filter element, summing over every output position: O(n * out positions)
// serial work per thread, so only for small shapes.
__global__ void __launch_bounds__(256)
    conv3d_bwd_filter_naive_kernel(Conv3dShape s, const float* x, const float* dy, float* dw,
                                   Precision p, int64_t total) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int c = int(i % s.c);
  int64_t rest = i / s.c;
  const int tw = int(rest % s.kernel.w), th = int(rest / s.kernel.w % s.kernel.h);
  const int td = int(rest / s.kernel.w / s.kernel.h % s.kernel.d);
  const int k = int(rest / s.kernel.w / s.kernel.h / s.kernel.d);
  float acc = 0.f;
  for (int n = 0; n < s.n; ++n)
    for (int oz = 0; oz < s.out.d; ++oz) {
      const int z = input_coord(oz, s.stride.d, s.pad_before.d, td, s.in.d);
      for (int oy = 0; oy < s.out.h; ++oy) {
        const int yy = input_coord(oy, s.stride.h, s.pad_before.h, th, s.in.h);
        for (int ox = 0; ox < s.out.w; ++ox) {
          const int xx = input_coord(ox, s.stride.w, s.pad_before.w, tw, s.in.w);
          if (z < 0 || yy < 0 || xx < 0) continue;
          const float xv = x[(((int64_t(n) * s.in.d + z) * s.in.h + yy) * s.in.w + xx) * s.c + c];
          const float g =
              dy[(((int64_t(n) * s.out.d + oz) * s.out.h + oy) * s.out.w + ox) * s.k + k];
          acc += round_operand(xv, p) * round_operand(g, p);
        }
      }
    }
  dw[i] = acc;
}

__global__ void __launch_bounds__(256)
    bias_grad_naive_kernel(const float* dy, int64_t positions, int k, float* dbias) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= k) return;
  float acc = 0.f;
  for (int64_t q = 0; q < positions; ++q)
    acc += dy[q * k + i];
  dbias[i] = acc;
}

int blocks_for(int64_t total) {
  return int((total + 255) / 256);
}

std::string describe(const char* op, const Conv3dShape& s, Precision p) {
  return fmt::format("{} (x {}x{}x{}x{}x{}, k {}, kernel {}x{}x{}, {})", op, s.n, s.in.d, s.in.h,
                     s.in.w, s.c, s.k, s.kernel.d, s.kernel.h, s.kernel.w, to_string(p));
}

}  // namespace

void conv3d_fwd_naive(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                      float* y, Precision precision, cudaStream_t stream) {
  const int64_t total = s.output_size();
  conv3d_fwd_naive_kernel<<<blocks_for(total), 256, 0, stream>>>(s, x, w, bias, y, precision,
                                                                 total);
  check_launch(describe("conv3d_fwd_naive", s, precision));
}

void conv3d_bwd_data_naive(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                           Precision precision, cudaStream_t stream) {
  const int64_t total = s.input_size();
  conv3d_bwd_data_naive_kernel<<<blocks_for(total), 256, 0, stream>>>(s, dy, w, dx, precision,
                                                                      total);
  check_launch(describe("conv3d_bwd_data_naive", s, precision));
}

void conv3d_bwd_filter_naive(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                             float* dbias, Precision precision, cudaStream_t stream) {
  const int64_t total = s.filter_size();
  conv3d_bwd_filter_naive_kernel<<<blocks_for(total), 256, 0, stream>>>(s, x, dy, dw, precision,
                                                                        total);
  check_launch(describe("conv3d_bwd_filter_naive", s, precision));
  if (!dbias) return;
  const int64_t positions = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  bias_grad_naive_kernel<<<blocks_for(s.k), 256, 0, stream>>>(dy, positions, s.k, dbias);
  check_launch(describe("conv3d_bwd_filter_naive bias", s, precision));
}

}  // namespace cu3d::cuda
