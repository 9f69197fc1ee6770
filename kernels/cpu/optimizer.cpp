#include "kernels/cpu/optimizer.h"

#include <cmath>

#include "kernels/cpu/row_reduce.h"
#include "kernels/error.h"

namespace cu3d::cpu {

template <typename T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, double lr, double momentum,
              double weight_decay, bool nesterov) {
  CU3D_CHECK(momentum == 0.0 || momentum_buf != nullptr,
             "sgd_step: momentum = {} needs a momentum buffer of {} elements", momentum, n);
  CU3D_CHECK(!nesterov || momentum > 0.0, "sgd_step: Nesterov momentum needs momentum > 0");
  const T lr_t = T(lr), mu = T(momentum), wd = T(weight_decay);
  if (momentum == 0.0) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i)
      param[i] -= lr_t * (grad[i] + wd * param[i]);
    return;
  }
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] + wd * param[i];
    const T buf = mu * momentum_buf[i] + g;
    momentum_buf[i] = buf;
    param[i] -= lr_t * (nesterov ? g + mu * buf : buf);
  }
}

template <typename T>
void adam_step(int64_t n, T* param, const T* grad, T* m, T* v, double lr, double beta1,
               double beta2, double eps, double weight_decay, bool decoupled, int64_t step) {
  CU3D_CHECK(step >= 1, "adam_step: step = {}; steps count from 1", step);
  CU3D_CHECK(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0,
             "adam_step: betas ({}, {}) must lie in [0, 1)", beta1, beta2);
  // Bias corrections in double: beta2^step for beta2 = 0.999 needs more than fp32 near 1.
  const T step_size = T(lr / (1.0 - std::pow(beta1, double(step))));
  const T inv_sqrt_bc2 = T(1.0 / std::sqrt(1.0 - std::pow(beta2, double(step))));
  const T b1 = T(beta1), b2 = T(beta2), eps_t = T(eps);
  const T decay = decoupled ? T(1.0 - lr * weight_decay) : T(1);
  const T l2 = decoupled ? T(0) : T(weight_decay);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    const T p = param[i] * decay;
    const T g = grad[i] + l2 * param[i];
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps_t);
  }
}

#define CU3D_INSTANTIATE(T)                                                                 \
  template void sgd_step<T>(int64_t, T*, const T*, T*, double, double, double, bool);       \
  template void adam_step<T>(int64_t, T*, const T*, T*, T*, double, double, double, double, \
                             double, bool, int64_t);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
