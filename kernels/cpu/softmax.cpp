#include "kernels/cpu/softmax.h"

#include <immintrin.h>

#include <limits>
#include <type_traits>

#include "kernels/cpu/row_reduce.h"

namespace cu3d::cpu {

namespace {

#if defined(__AVX512F__)
// e^x for 16 floats x <= 0 (softmax's arguments), within 2 ulp of expf: x = n·ln 2 + r with
// |r| <= ln 2 / 2, e^r by Cephes expf's degree-6 polynomial, times 2^n by VSCALEFPS. Below -87.3
// e^x leaves float's normal range and the result is 0 (expf would give a denormal): softmax
// probabilities under 1e-38 are zero either way. glibc's expf is not vectorised without
// -ffast-math; one call per element was 7 % of keras3d's CPU training step.
// (The masked forms of the intrinsics, with every lane set, avoid the unmasked ones' undefined
// pass-through operand, which gcc 12 reports as maybe-uninitialized.)
constexpr __mmask16 kAllLanes = 0xffff;

__m512 exp_nonpositive(__m512 x) {
  const __m512 xlog2e = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_mask_roundscale_ps(xlog2e, kAllLanes, xlog2e,
                                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n·ln 2, with ln 2 split in two so that n·ln2_hi is exact.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  for (float c :
       {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // Not below -87.3, or NaN: a NaN propagates (into the row's sum and every output), as with expf.
  const __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ);
  return _mm512_maskz_mov_ps(normal, _mm512_mask_scalef_ps(p, kAllLanes, p, n));
}

__m512 max16(__m512 a, __m512 b) {
  return _mm512_mask_max_ps(a, kAllLanes, a, b);
}

// The max or the sum of 16 lanes by four shuffle steps, in a fixed order (deterministic).
template <typename Op>
float reduce16(__m512 v, Op op) {
  v = op(v, _mm512_mask_shuffle_f32x4(v, kAllLanes, v, v,
                                      _MM_SHUFFLE(1, 0, 3, 2)));  // the 256-bit halves
  v = op(v,
         _mm512_mask_shuffle_f32x4(v, kAllLanes, v, v, _MM_SHUFFLE(2, 3, 0, 1)));  // 128-bit lanes
  v = op(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = op(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}

// A float row 16 lanes at a time (a masked vector for the last cols % 16).
void softmax_row_avx512(const float* xr, int cols, float* yr) {
  const auto mask = [&](int j) {
    return cols - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - j)) - 1);
  };
  __m512 max = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int j = 0; j < cols; j += 16)
    max = _mm512_mask_max_ps(max, mask(j), max, _mm512_maskz_loadu_ps(mask(j), xr + j));
  const __m512 row_max = _mm512_set1_ps(reduce16(max, max16));
  __m512 sum = _mm512_setzero_ps();
  for (int j = 0; j < cols; j += 16) {
    const __m512 e =
        exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask(j), xr + j), row_max));
    _mm512_mask_storeu_ps(yr + j, mask(j), e);
    sum = _mm512_mask_add_ps(sum, mask(j), sum, e);
  }
  const __m512 inv =
      _mm512_set1_ps(1.0f / reduce16(sum, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); }));
  for (int j = 0; j < cols; j += 16)
    _mm512_mask_storeu_ps(yr + j, mask(j),
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(mask(j), yr + j), inv));
}
#endif

}  // namespace

template <typename T>
void softmax_fwd(const SoftmaxShape& s, const T* x, T* y) {
  const int cols = s.cols;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      softmax_row_avx512(x + r * cols, cols, y + r * cols);
      continue;
    }
#endif
    softmax_row(x + r * cols, cols, y + r * cols);
  }
}

template <typename T>
void softmax_bwd(const SoftmaxShape& s, const T* y, const T* dy, T* dx) {
  const int cols = s.cols;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    double dot = 0.0;
    for (int j = 0; j < cols; ++j)
      dot += double(dyr[j]) * yr[j];
    const T dot_t = T(dot);
    for (int j = 0; j < cols; ++j)
      dx[r * cols + j] = yr[j] * (dyr[j] - dot_t);
  }
}

#define CU3D_INSTANTIATE(T)                                        \
  template void softmax_fwd<T>(const SoftmaxShape&, const T*, T*); \
  template void softmax_bwd<T>(const SoftmaxShape&, const T*, const T*, T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
