#include "kernels/cpu/elementwise.h"

namespace cu3d::cpu {

template <typename T>
void add(int64_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for simd if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] + b[i];
}

template <typename T>
void mul(int64_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for simd if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] * b[i];
}

template <typename T>
void scale(int64_t n, T alpha, const T* x, T* y) {
#pragma omp parallel for simd if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i)
    y[i] = alpha * x[i];
}

template <typename T>
double sum(int64_t n, const T* x) {
  double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i)
    total += double(x[i]);
  return total;
}

#define CU3D_INSTANTIATE(T)                              \
  template void add<T>(int64_t, const T*, const T*, T*); \
  template void mul<T>(int64_t, const T*, const T*, T*); \
  template void scale<T>(int64_t, T, const T*, T*);      \
  template double sum<T>(int64_t, const T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
