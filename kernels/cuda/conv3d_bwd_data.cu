// Backward-data conv3d as an implicit GEMM (version 2; see conv3d_igemm.cuh):
//   dx (M = n*id*ih*iw, N = c) = sum over r < R = taps*k of A(m, r) * B(r, n)
//   A(m, r) = dy[output pixel o, channel r % k], where input pixel m = o*stride - pad + tap
//             for tap = r / k, i.e. o = (m + pad - tap) / stride when that divides evenly and
//             lands inside the output (zero otherwise)
//   B(r, n) = w[r % k, tap r / k, channel n]
// A is contiguous along r (the k channels of dy), B along n (the c channels of a filter tap).
// With stride > 1 most (m, tap) pairs do not divide evenly and contribute zeros: correct, but
// wasting (stride^3 - 1) / stride^3 of the MMAs; the C3D models use stride 1 everywhere.
//
// With stride 1, backward-data is itself a forward conv (bwd_data_as_forward, kernels/shapes.h):
// that is how versions 3-8 (ConvKernel::pipelined, ::wide, ::wgmma, ::wgmma_ws, ::wgmma_tma,
// ::wgmma_cluster) run it, and in fp32 versions 5-8 (3xTF32, conv3d_fwd.cu) or version 3's FFMA
// form: one small transpose of w (flip_transpose_filters, CPU reference
// cpu::conv3d_flip_transpose_filters) and then the pipelined forward.
#include <fmt/format.h>

#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/conv3d_igemm_launch.cuh"
#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

using namespace igemm;

// Output coordinate of input coordinate `i` under tap offset `t` along one axis, or -1.
__device__ inline int output_coord(int i, int pad, int t, int stride, int extent) {
  int o = i + pad - t;
  if (o < 0) return -1;
  if (stride > 1) {
    if (o % stride) return -1;
    o /= stride;
  }
  return o < extent ? o : -1;
}

struct BwdDataProblem {
  static constexpr bool kAContigK = true;
  static constexpr bool kBContigK = false;
  Geometry g;
  int M, N, R;
  const float* dy;
  const float* w;
  float* dx;
  bool vec_a, vec_b;

  // Offset of dy at (output pixel feeding input pixel i through tap t, channel 0), or -1.
  __device__ int dy_offset(const Pixel& i, const Tap& t) const {
    const int z = output_coord(i.z, g.pd, t.d, g.sd, g.od);
    const int y = output_coord(i.y, g.ph, t.h, g.sh, g.oh);
    const int x = output_coord(i.x, g.pw, t.w, g.sw, g.ow);
    if (z < 0 || y < 0 || x < 0) return -1;
    return (((i.n * g.od + z) * g.oh + y) * g.ow + x) * g.k;
  }

  __device__ void load_a(int m, int r, float* v) const {
    if (m >= M) return zero4(v);
    const Pixel i = split_pixel(m, g.div_id, g.div_ih, g.div_iw);
    if (vec_a) {
      if (r >= R) return zero4(v);
      uint32_t kk;
      const int off = dy_offset(i, split_tap(g.div_k.divmod(r, &kk), g));
      return off < 0 ? zero4(v) : load4(dy, off + kk, v);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      uint32_t kk;
      const int off = r + e < R ? dy_offset(i, split_tap(g.div_k.divmod(r + e, &kk), g)) : -1;
      v[e] = off < 0 ? 0.f : __ldg(dy + off + kk);
    }
  }

  __device__ void load_b(int r, int n, float* v) const {
    if (r >= R) return zero4(v);
    uint32_t kk;
    const uint32_t tap = g.div_k.divmod(r, &kk);
    const int row = (kk * g.taps + tap) * N;
    if (vec_b) return n < N ? load4(w, row + n, v) : zero4(v);
#pragma unroll
    for (int e = 0; e < 4; ++e)
      v[e] = n + e < N ? __ldg(w + row + n + e) : 0.f;
  }

  __device__ void store(int m, int n, float v, int) const {
    dx[int64_t(m) * N + n] = v;
  }
};

// w'[ci][tap'][ko] = w[ko][taps - 1 - tap'][ci], one thread per element of w' (writes
// coalesced, reads strided). Memory-bound: 8 |w| bytes, small against the conv (C3D's conv4b:
// 57 MB against its 355 GFLOP at batch 32).
__global__ void __launch_bounds__(256)
    flip_transpose_filters_kernel(const float* w, float* wt, int k, int taps, int c) {
  const int64_t count = int64_t(k) * taps * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int ko = int(i % k), tap = int(i / k % taps), ci = int(i / (int64_t(k) * taps));
    wt[i] = w[(int64_t(ko) * taps + (taps - 1 - tap)) * c + ci];
  }
}

}  // namespace

bool conv3d_bwd_data_pipelined_supports(const Conv3dShape& s, Precision precision) {
  return bwd_data_is_forward(s) && conv3d_fwd_pipelined_supports(bwd_data_as_forward(s), precision);
}

bool conv3d_bwd_data_runs_as_forward(const Conv3dShape& s, Precision precision, ConvKernel kernel) {
  if (kernel == ConvKernel::implicit_gemm || !bwd_data_is_forward(s)) return false;
  if (precision == Precision::fp32) {
    const Conv3dShape forward = bwd_data_as_forward(s);
    return (is_wgmma_version(kernel) && conv3d_fwd_wgmma_supports(forward, precision)) ||
           conv3d_fwd_pipelined_ffma_supports(forward, precision);
  }
  return conv3d_bwd_data_pipelined_supports(s, precision);
}

void conv3d_bwd_data(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                     Precision precision, cudaStream_t stream, ConvKernel kernel) {
  if (conv3d_bwd_data_runs_as_forward(s, precision, kernel)) {
    const int taps = s.kernel.d * s.kernel.h * s.kernel.w;
    auto* wt = static_cast<float*>(malloc_async(sizeof(float) * s.filter_size(), stream));
    flip_transpose_filters_kernel<<<grid_stride_blocks(s.filter_size()), 256, 0, stream>>>(
        w, wt, s.k, taps, s.c);
    check_launch(fmt::format("conv3d_bwd_data: filter transpose ({}x{}x{})", s.k, taps, s.c));
    conv3d_fwd(bwd_data_as_forward(s), dy, wt, nullptr, dx, precision, stream, kernel);
    free_async(wt, stream);
    return;
  }
  BwdDataProblem prob;
  prob.g = make_geometry(s, "conv3d_bwd_data");
  prob.M = s.n * s.in.d * s.in.h * s.in.w;
  prob.N = s.c;
  prob.R = prob.g.taps * s.k;
  prob.dy = dy, prob.w = w, prob.dx = dx;
  prob.vec_a = s.k % 4 == 0;
  prob.vec_b = s.c % 4 == 0;
  run_implicit_gemm(prob, precision, plan_splits(prob.R, precision, 1, false), stream,
                    fmt::format("conv3d_bwd_data (dx {}x{}x{}x{}x{}, k {}, {})", s.n, s.in.d,
                                s.in.h, s.in.w, s.c, s.k, to_string(precision)));
}

}  // namespace cu3d::cuda
