// Batch normalization over the rows of a channels-last (rows, c) array: rows = n*d*h*w for a
// 3D activation, each channel normalized over the batch and all positions.
// x, y, dx, dy are (rows, c); gamma, beta, mean, rstd, running_mean, running_var are (c).
//
// Training normalizes with the batch statistics (biased variance) and updates the running
// statistics in PyTorch's convention:
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * rows / (rows - 1)
// i.e. `momentum` is the weight of the new batch (PyTorch default 0.1) and the running
// variance is the unbiased estimate. A Keras BatchNormalization(momentum=0.99) corresponds to
// momentum = 0.01 here; Keras keeps the biased variance, which differs by rows/(rows-1), i.e.
// < 0.1 % for the >= 1000 rows of any 3D activation batch.
// Evaluation normalizes with the running statistics.
//
// Cost per element of x (E = rows*c elements of sizeof(T) bytes):
//   training forward ~8 FLOPs, reads x three times, writes y: 4*E*sizeof(T) bytes;
//   eval forward 3 FLOPs ((x - mean) * scale + beta), 2*E*sizeof(T) bytes;
//   backward ~10 FLOPs, reads x and dy twice, writes dx: 5*E*sizeof(T) bytes.
#pragma once

#include <cstdint>

namespace cu3d::cpu {

struct BatchNormShape {
  int64_t rows = 1;  // n*d*h*w
  int c = 1;         // channels

  int64_t size() const { return rows * c; }
};

// Training forward: writes y and saves the batch mean and rstd = 1/sqrt(var + eps) for the
// backward pass; updates running_mean/running_var when they are non-null. Needs rows >= 2
// (the unbiased variance of one value is undefined).
template <typename T>
void batch_norm_fwd_train(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                          T momentum, T* y, T* mean, T* rstd, T* running_mean, T* running_var);

// Eval forward: normalizes with the running statistics; saves mean = running_mean and
// rstd = 1/sqrt(running_var + eps) so that the same backward applies.
template <typename T>
void batch_norm_fwd_eval(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                         const T* running_mean, const T* running_var, T eps, T* y, T* mean,
                         T* rstd);

// Backward with xhat = (x - mean) * rstd:
//   dgamma = sum_rows dy * xhat,  dbeta = sum_rows dy,
//   dx = gamma * rstd * (dy - dbeta / rows - xhat * dgamma / rows)   with batch statistics,
//   dx = gamma * rstd * dy                                            with running statistics.
template <typename T>
void batch_norm_bwd(const BatchNormShape& s, const T* x, const T* gamma, const T* mean,
                    const T* rstd, const T* dy, bool batch_stats, T* dx, T* dgamma, T* dbeta);

// Plain serial loops, the specification the fast versions are tested against.
template <typename T>
void batch_norm_fwd_train_naive(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                                T eps, T momentum, T* y, T* mean, T* rstd, T* running_mean,
                                T* running_var);
template <typename T>
void batch_norm_bwd_naive(const BatchNormShape& s, const T* x, const T* gamma, const T* mean,
                          const T* rstd, const T* dy, bool batch_stats, T* dx, T* dgamma, T* dbeta);

}  // namespace cu3d::cpu
