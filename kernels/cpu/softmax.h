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

#include <cstdint>

namespace cu3d::cpu {

struct SoftmaxShape {
  int64_t rows = 1;
  int cols = 1;

  int64_t size() const { return rows * cols; }
};

template <typename T>
void softmax_fwd(const SoftmaxShape& s, const T* x, T* y);

// From the saved output: dx = y * (dy - sum_k dy[k] * y[k]) per row.
template <typename T>
void softmax_bwd(const SoftmaxShape& s, const T* y, const T* dy, T* dx);

}  // namespace cu3d::cpu
