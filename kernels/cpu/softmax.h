// Softmax over the last axis of a (rows, cols) array. With channels-last activations this is
// the softmax over channels that the Keras seed model uses as a conv activation, and over
// classes for a classifier's logits.
//   y[r, j] = exp(x[r, j] - max_r) / sum_k exp(x[r, k] - max_r)
// Subtracting the row maximum keeps every exp argument <= 0: no overflow for any input.
//
// Cost per element: forward 1 exp + ~3 FLOPs, reads x twice and writes y (3 passes over a row
// that normally stays in L1): ~2*E*sizeof(T) bytes of memory traffic. Backward ~4 FLOPs,
// reads y and dy, writes dx: 3*E*sizeof(T) bytes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace cu3d::cpu {

struct SoftmaxShape {
  int64_t rows = 1;
  int cols = 1;

  int64_t size() const { return rows * cols; }
};

template <typename T>
void softmax_fwd(const SoftmaxShape& s, const T* x, T* y);

// The row's max and its sum of exp(x - max), as softmax_row leaves them.
template <typename T>
struct RowMaxSum {
  T max;
  double sum;
};

// One row in any precision, the specification: yr = exp(xr - max) / sum, summed in double.
// softmax_fwd's path for double (float on AVX-512 has a vectorised one) and the softmax of
// softmax_xent_fwd, which takes the returned max and sum for its log-sum-exp.
template <typename T>
RowMaxSum<T> softmax_row(const T* xr, int cols, T* yr) {
  const T max = *std::max_element(xr, xr + cols);
  double sum = 0.0;
  for (int j = 0; j < cols; ++j) {
    yr[j] = std::exp(xr[j] - max);
    sum += yr[j];
  }
  const T inv = T(1.0 / sum);
  for (int j = 0; j < cols; ++j)
    yr[j] *= inv;
  return {max, sum};
}

// From the saved output: dx = y * (dy - sum_k dy[k] * y[k]) per row.
template <typename T>
void softmax_bwd(const SoftmaxShape& s, const T* y, const T* dy, T* dx);

}  // namespace cu3d::cpu
