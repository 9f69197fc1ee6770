// Elementwise activations. x, y, dx, dy are flat arrays of n elements (any shape).
// Backward passes read the saved output y rather than x, so the forward input can be freed
// (or overwritten in place) once the activation has run.
//
// Cost per element: relu 1 FLOP, leaky relu 2, sigmoid ~4 plus one exp; each pass reads one
// array and writes one (backward reads two): 2*n*sizeof(T) bytes forward, 3*n*sizeof(T)
// backward. All memory-bound.
#pragma once

#include <cstdint>

namespace cu3d::cpu {

// y = max(x, 0)
template <typename T>
void relu_fwd(int64_t n, const T* x, T* y);
// dx = dy where y > 0, else 0 (the subgradient at 0 is taken as 0, as in PyTorch).
template <typename T>
void relu_bwd(int64_t n, const T* y, const T* dy, T* dx);

// y = x for x > 0, alpha * x otherwise.
template <typename T>
void leaky_relu_fwd(int64_t n, const T* x, T alpha, T* y);
// dx = dy where y > 0, alpha * dy otherwise. Needs alpha >= 0, so that y > 0 exactly where
// x > 0 and the output determines the slope.
template <typename T>
void leaky_relu_bwd(int64_t n, const T* y, T alpha, const T* dy, T* dx);

// y = 1 / (1 + exp(-x)), evaluated without overflow for large |x|.
template <typename T>
void sigmoid_fwd(int64_t n, const T* x, T* y);
// dx = dy * y * (1 - y)
template <typename T>
void sigmoid_bwd(int64_t n, const T* y, const T* dy, T* dx);

}  // namespace cu3d::cpu
