#include "kernels/cpu/dropout.h"

#include <algorithm>

#include "kernels/cpu/row_reduce.h"
#include "kernels/error.h"
#include "kernels/philox.h"

namespace cu3d::cpu {
namespace {

// Forward and backward are the same masked scaling; only the array it applies to differs.
template <typename T>
void apply_dropout_mask(const char* op, int64_t n, const T* in, double p, uint64_t seed,
                        uint64_t offset, T* out) {
  CU3D_CHECK(p >= 0.0 && p < 1.0, "{}: rate p = {} is outside [0, 1)", op, p);
  const uint32_t threshold = dropout_threshold(p);
  const T scale = T(1.0 / (1.0 - p));
  const int64_t blocks = (n + 3) / 4;
  // One Philox block (~40 integer ops) per 4 elements makes this ~10x the work of a plain
  // elementwise op, so threads pay off at fewer elements.
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements / 8)
  for (int64_t b = 0; b < blocks; ++b) {
    const Philox4x32Counter bits = philox_block_at(seed, offset, uint64_t(b));
    for (int64_t i = 4 * b; i < std::min(n, 4 * b + 4); ++i) {
      out[i] = dropout_keeps(bits.v[i & 3], threshold) ? in[i] * scale : T(0);
    }
  }
}

}  // namespace

template <typename T>
void dropout_fwd(int64_t n, const T* x, double p, uint64_t seed, uint64_t offset, T* y) {
  apply_dropout_mask("dropout", n, x, p, seed, offset, y);
}

template <typename T>
void dropout_bwd(int64_t n, const T* dy, double p, uint64_t seed, uint64_t offset, T* dx) {
  apply_dropout_mask("dropout backward", n, dy, p, seed, offset, dx);
}

template <typename T>
void dropout_fwd_naive(int64_t n, const T* x, double p, uint64_t seed, uint64_t offset, T* y) {
  CU3D_CHECK(p >= 0.0 && p < 1.0, "dropout: rate p = {} is outside [0, 1)", p);
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_keeps(philox_u32_at(seed, offset, uint64_t(i)), dropout_threshold(p));
    y[i] = keep ? x[i] * T(1.0 / (1.0 - p)) : T(0);
  }
}

#define CU3D_INSTANTIATE(T)                                                        \
  template void dropout_fwd<T>(int64_t, const T*, double, uint64_t, uint64_t, T*); \
  template void dropout_bwd<T>(int64_t, const T*, double, uint64_t, uint64_t, T*); \
  template void dropout_fwd_naive<T>(int64_t, const T*, double, uint64_t, uint64_t, T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
