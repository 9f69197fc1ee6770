// Optimizer updates on one flat parameter array of n elements, in PyTorch's semantics so that
// hyperparameters and results carry over from torch.optim. Hyperparameters are converted to T
// once; the arithmetic is in T, as the CUDA kernels do it.
//
// Cost per element: SGD ~5 FLOPs, reads param, grad, momentum_buf and writes param,
// momentum_buf: 5*n*sizeof(T) bytes. Adam ~12 FLOPs and a sqrt, reads param, grad, m, v and
// writes param, m, v: 7*n*sizeof(T) bytes. Memory-bound.
#pragma once

#include <cstdint>

namespace cu3d::cpu {

// torch.optim.SGD with dampening 0:
//   g = grad + weight_decay * param
//   buf = momentum * buf + g                  (when momentum != 0; buf starts at zero, which
//                                              equals PyTorch's buf = g on the first step)
//   g = nesterov ? g + momentum * buf : buf   (when momentum != 0)
//   param -= lr * g
// momentum_buf may be null when momentum == 0.
template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, double lr, double momentum,
              double weight_decay, bool nesterov);

// torch.optim.Adam (decoupled = false: weight decay added to the gradient, L2) and
// torch.optim.AdamW (decoupled = true: param *= 1 - lr * weight_decay before the update):
//   m = beta1 * m + (1 - beta1) * g,   v = beta2 * v + (1 - beta2) * g^2
//   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// m and v start at zero; step counts from 1 (the first update is step 1).
template <typename T>
void adam_step(int64_t n, T* param, const T* grad, T* m, T* v, double lr, double beta1,
               double beta2, double eps, double weight_decay, bool decoupled, int64_t step);

}  // namespace cu3d::cpu
