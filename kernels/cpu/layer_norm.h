// Layer normalization with per-channel scale and offset, one kernel for both variants the
// models use:
//  - the TensorFlow C3D's: each sample normalized over all of D,H,W,C
//    (groups = n, m = d*h*w);
//  - per position: each (n,d,h,w) normalized over C only (groups = n*d*h*w, m = 1).
// x and y are (groups, m, c), channels-last; gamma and beta are (c); mean and rstd are
// (groups). Statistics are the biased mean and variance over the m*c elements of a group
// (tf.nn.moments, torch.nn.LayerNorm), accumulated in double so fp32 inputs with a large mean
// lose no precision:
//   y = (x - mean) * rstd * gamma[ch] + beta[ch],   rstd = 1 / sqrt(var + eps).
//
// Cost per element of x (E = groups*m*c elements of sizeof(T) bytes):
//   forward  ~8 FLOPs; reads x three times (mean, variance, normalize) and writes y:
//            4*E*sizeof(T) bytes when x does not stay in cache.
//   backward ~19 FLOPs; reads x and dy three times and writes dx: 7*E*sizeof(T) bytes.
// Both are memory-bound on any CPU (well under 1 FLOP/byte).
#pragma once

#include <cstdint>

namespace cu3d::cpu {

struct LayerNormShape {
  int64_t groups = 1;  // independent normalizations
  int64_t m = 1;       // rows of c channels per group
  int c = 1;           // channels: the length of gamma and beta

  int64_t rows() const { return groups * m; }
  int64_t size() const { return groups * m * c; }
};

// Forward: writes y (groups, m, c) and saves mean and rstd (groups) for the backward pass.
template <typename T>
void layer_norm_fwd(const LayerNormShape& s, const T* x, const T* gamma, const T* beta, T eps, T* y,
                    T* mean, T* rstd);

// Backward: from dy (groups, m, c) writes dx (groups, m, c) and dgamma, dbeta (c), using the
// mean and rstd saved by the forward pass. With xhat = (x - mean) * rstd and g = dy * gamma:
//   dx = rstd * (g - mean_group(g) - xhat * mean_group(g * xhat))
//   dgamma[ch] = sum dy * xhat,   dbeta[ch] = sum dy   (over all groups and rows).
template <typename T>
void layer_norm_bwd(const LayerNormShape& s, const T* x, const T* gamma, const T* mean,
                    const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta);

// Plain serial loops, the specification the fast versions are tested against.
template <typename T>
void layer_norm_fwd_naive(const LayerNormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                          T* y, T* mean, T* rstd);
template <typename T>
void layer_norm_bwd_naive(const LayerNormShape& s, const T* x, const T* gamma, const T* mean,
                          const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta);

}  // namespace cu3d::cpu
