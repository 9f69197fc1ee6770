#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/row_reduce.h"

namespace cu3d::cpu {

template <typename T>
void softmax_fwd(const SoftmaxShape& s, const T* x, T* y) {
  const int cols = s.cols;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T max = *std::max_element(xr, xr + cols);
    double sum = 0.0;
    for (int j = 0; j < cols; ++j) {
      yr[j] = std::exp(xr[j] - max);
      sum += yr[j];
    }
    const T inv = T(1.0 / sum);
    for (int j = 0; j < cols; ++j)
      yr[j] *= inv;
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
