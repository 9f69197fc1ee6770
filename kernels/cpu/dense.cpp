#include "kernels/cpu/dense.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm.h"

namespace cu3d::cpu {

template <typename T>
void dense_fwd(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* b, T* y) {
  if (b)
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(y + i * out, b, sizeof(T) * out);
  gemm<T>(false, true, m, out, in, T(1), x, in, w, in, b ? T(1) : T(0), y, out);
}

template <typename T>
void dense_bwd(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* dy, T* dx,
               T* dw, T* db) {
  if (dx) gemm<T>(false, false, m, in, out, T(1), dy, out, w, in, T(0), dx, in);
  if (dw) gemm<T>(true, false, out, in, m, T(1), dy, out, x, in, T(0), dw, in);
  if (!db) return;
  // Column sums of dy: m*out adds, negligible next to the GEMMs.
  std::fill(db, db + out, T(0));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < out; ++o)
      db[o] += dy[i * out + o];
}

template <typename T>
void dense_fwd_naive(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* b, T* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < out; ++o) {
      T sum = b ? b[o] : T(0);
      for (int64_t j = 0; j < in; ++j)
        sum += x[i * in + j] * w[o * in + j];
      y[i * out + o] = sum;
    }
}

template <typename T>
void dense_bwd_naive(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* dy, T* dx,
                     T* dw, T* db) {
  if (dx) std::fill(dx, dx + m * in, T(0));
  if (dw) std::fill(dw, dw + out * in, T(0));
  if (db) std::fill(db, db + out, T(0));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < out; ++o) {
      const T g = dy[i * out + o];
      if (db) db[o] += g;
      for (int64_t j = 0; j < in; ++j) {
        if (dx) dx[i * in + j] += g * w[o * in + j];
        if (dw) dw[o * in + j] += g * x[i * in + j];
      }
    }
}

#define CU3D_INSTANTIATE_DENSE(T)                                                                  \
  template void dense_fwd<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*);         \
  template void dense_bwd<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*, T*, T*); \
  template void dense_fwd_naive<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*);   \
  template void dense_bwd_naive<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*,    \
                                   T*, T*);
CU3D_INSTANTIATE_DENSE(float)
CU3D_INSTANTIATE_DENSE(double)
#undef CU3D_INSTANTIATE_DENSE

}  // namespace cu3d::cpu
