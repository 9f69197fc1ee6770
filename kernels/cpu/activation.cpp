#include "kernels/cpu/activation.h"

#include <cmath>

#include "kernels/cpu/row_reduce.h"
#include "kernels/error.h"

namespace cu3d::cpu {

template <typename T>
void relu_fwd(int64_t n, const T* x, T* y) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T>
void relu_bwd(int64_t n, const T* y, const T* dy, T* dx) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template <typename T>
void leaky_relu_fwd(int64_t n, const T* x, T alpha, T* y) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] > T(0) ? x[i] : alpha * x[i];
}

template <typename T>
void leaky_relu_bwd(int64_t n, const T* y, T alpha, const T* dy, T* dx) {
  CU3D_CHECK(alpha >= T(0),
             "leaky_relu backward: alpha = {} is negative; the backward pass reads the sign of "
             "the output, which needs alpha >= 0",
             double(alpha));
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    dx[i] = y[i] > T(0) ? dy[i] : alpha * dy[i];
}

template <typename T>
void sigmoid_fwd(int64_t n, const T* x, T* y) {
  // exp of a non-positive argument only: exp(-|x|) never overflows, and for x < 0 the form
  // e / (1 + e) keeps the tiny result's relative precision that 1 / (1 + exp(-x)) would lose.
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    const T e = std::exp(-std::abs(x[i]));
    y[i] = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  }
}

template <typename T>
void sigmoid_bwd(int64_t n, const T* y, const T* dy, T* dx) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    dx[i] = dy[i] * y[i] * (T(1) - y[i]);
}

#define CU3D_INSTANTIATE(T)                                            \
  template void relu_fwd<T>(int64_t, const T*, T*);                    \
  template void relu_bwd<T>(int64_t, const T*, const T*, T*);          \
  template void leaky_relu_fwd<T>(int64_t, const T*, T, T*);           \
  template void leaky_relu_bwd<T>(int64_t, const T*, T, const T*, T*); \
  template void sigmoid_fwd<T>(int64_t, const T*, T*);                 \
  template void sigmoid_bwd<T>(int64_t, const T*, const T*, T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
