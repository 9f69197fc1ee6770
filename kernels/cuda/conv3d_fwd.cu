// Forward conv3d as an implicit GEMM (version 2; see conv3d_igemm.cuh):
//   y (M = n*od*oh*ow, N = k) = sum over r < R = taps*c of A(m, r) * B(r, n)
//   A(m, r) = x[pixel m shifted by tap r / c, channel r % c]   (zero in the padding)
//   B(r, n) = w[n * R + r]                                     (filters are rows of R)
// Both operands are contiguous along r, so the 4-element load units run along r; with
// c % 4 == 0 a unit never crosses a tap and is one 16-byte load.
#include <fmt/format.h>

#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/conv3d_igemm.cuh"

namespace cu3d::cuda {
namespace {

using namespace igemm;

struct FwdProblem {
  static constexpr bool kAContigK = true;
  static constexpr bool kBContigK = true;
  Geometry g;
  int M, N, R;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  bool relu, vec_a, vec_b;

  __device__ void load_a(int m, int r, float* v) const {
    if (m >= M) return zero4(v);
    const Pixel o = split_pixel(m, g.div_od, g.div_oh, g.div_ow);
    if (vec_a) {
      if (r >= R) return zero4(v);
      uint32_t c;
      const int off = input_offset(g, o, split_tap(g.div_c.divmod(r, &c), g));
      return off < 0 ? zero4(v) : load4(x, off + c, v);
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

  __device__ void store(int m, int n, float v, int) const {
    if (bias) v += __ldg(bias + n);
    if (relu) v = fmaxf(v, 0.f);
    y[int64_t(m) * N + n] = v;
  }
};

void run_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
             bool relu, Precision p, cudaStream_t stream) {
  FwdProblem prob;
  prob.g = make_geometry(s, "conv3d_fwd");
  prob.M = s.n * s.out.d * s.out.h * s.out.w;
  prob.N = s.k;
  prob.R = prob.g.taps * s.c;
  prob.x = x, prob.w = w, prob.bias = bias, prob.y = y, prob.relu = relu;
  prob.vec_a = s.c % 4 == 0;
  prob.vec_b = prob.R % 4 == 0;
  run_implicit_gemm(prob, p, plan_splits(prob.R, p, 1, false), stream,
                    fmt::format("conv3d_fwd (x {}x{}x{}x{}x{}, k {}, {})", s.n, s.in.d, s.in.h,
                                s.in.w, s.c, s.k, to_string(p)));
}

}  // namespace

void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream) {
  run_fwd(s, x, w, bias, y, false, precision, stream);
}

void conv3d_fwd_bias_relu(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Precision precision, cudaStream_t stream) {
  run_fwd(s, x, w, bias, y, true, precision, stream);
}

}  // namespace cu3d::cuda
