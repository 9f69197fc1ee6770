#include "kernels/cpu/batch_norm.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/row_reduce.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

// y = (x - mean) * scale + beta per channel, the one pass both forwards end with. Centring
// before scaling (rather than folding the mean into the shift) avoids cancellation in fp32
// when |mean| >> std.
template <typename T>
void normalize(const BatchNormShape& s, const T* x, const T* mean, const T* scale, const T* beta,
               T* y) {
  const int c = s.c;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int j = 0; j < c; ++j)
      y[r * c + j] = (x[r * c + j] - mean[j]) * scale[j] + beta[j];
  }
}

template <typename T>
void update_running(const BatchNormShape& s, T momentum, const double* mu, const double* var,
                    T* running_mean, T* running_var) {
  if (running_mean == nullptr || running_var == nullptr) return;
  const double m = momentum, bessel = double(s.rows) / double(s.rows - 1);
  for (int j = 0; j < s.c; ++j) {
    running_mean[j] = T((1.0 - m) * running_mean[j] + m * mu[j]);
    running_var[j] = T((1.0 - m) * running_var[j] + m * var[j] * bessel);
  }
}

}  // namespace

template <typename T>
void batch_norm_fwd_train(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                          T momentum, T* y, T* mean, T* rstd, T* running_mean, T* running_var) {
  CU3D_CHECK(s.rows >= 2,
             "batch_norm: training needs at least 2 values per channel, got rows={} (c={}); "
             "use eval mode or a larger batch",
             s.rows, s.c);
  const int c = s.c;
  std::vector<double> mu(c), var(c);
  sum_per_channel<1>(
      s.rows, c,
      [&](int64_t r, double* acc) {
        for (int j = 0; j < c; ++j)
          acc[j] += x[r * c + j];
      },
      mu.data());
  for (double& v : mu)
    v /= double(s.rows);
  // Centred second pass: sum of squares minus squared mean cancels when |mean| >> std.
  sum_per_channel<1>(
      s.rows, c,
      [&](int64_t r, double* acc) {
        for (int j = 0; j < c; ++j)
          acc[j] += (x[r * c + j] - mu[j]) * (x[r * c + j] - mu[j]);
      },
      var.data());
  for (double& v : var)
    v /= double(s.rows);
  std::vector<T> scale(c);
  for (int j = 0; j < c; ++j) {
    const double rs = 1.0 / std::sqrt(var[j] + double(eps));
    mean[j] = T(mu[j]);
    rstd[j] = T(rs);
    scale[j] = T(gamma[j] * rs);
  }
  normalize(s, x, mean, scale.data(), beta, y);
  update_running(s, momentum, mu.data(), var.data(), running_mean, running_var);
}

template <typename T>
void batch_norm_fwd_eval(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                         const T* running_mean, const T* running_var, T eps, T* y, T* mean,
                         T* rstd) {
  std::vector<T> scale(s.c);
  for (int j = 0; j < s.c; ++j) {
    const double rs = 1.0 / std::sqrt(double(running_var[j]) + double(eps));
    mean[j] = running_mean[j];
    rstd[j] = T(rs);
    scale[j] = T(gamma[j] * rs);
  }
  normalize(s, x, mean, scale.data(), beta, y);
}

template <typename T>
void batch_norm_bwd(const BatchNormShape& s, const T* x, const T* gamma, const T* mean,
                    const T* rstd, const T* dy, bool batch_stats, T* dx, T* dgamma, T* dbeta) {
  const int c = s.c;
  std::vector<double> sums(2 * int64_t(c));  // [dgamma | dbeta]
  sum_per_channel<2>(
      s.rows, c,
      [&](int64_t r, double* acc) {
        for (int j = 0; j < c; ++j) {
          const double d = dy[r * c + j];
          acc[j] += d * (x[r * c + j] - mean[j]) * rstd[j];
          acc[c + j] += d;
        }
      },
      sums.data());
  for (int j = 0; j < c; ++j) {
    dgamma[j] = T(sums[j]);
    dbeta[j] = T(sums[c + j]);
  }
  // dx = gr * (dy - mean_dy - (x - mean) * rstd * mean_dyx) with gr = gamma * rstd, folded
  // into dx = a * dy + b * (x - mean) + k per channel: one pass once the sums are known.
  std::vector<T> a(c), b(c), k(c);
  for (int j = 0; j < c; ++j) {
    const double gr = double(gamma[j]) * rstd[j];
    const double mean_dy = batch_stats ? sums[c + j] / double(s.rows) : 0.0;
    const double mean_dyx = batch_stats ? sums[j] / double(s.rows) : 0.0;
    a[j] = T(gr);
    b[j] = T(-gr * rstd[j] * mean_dyx);
    k[j] = T(-gr * mean_dy);
  }
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int j = 0; j < c; ++j) {
      dx[r * c + j] = a[j] * dy[r * c + j] + b[j] * (x[r * c + j] - mean[j]) + k[j];
    }
  }
}

template <typename T>
void batch_norm_fwd_train_naive(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                                T eps, T momentum, T* y, T* mean, T* rstd, T* running_mean,
                                T* running_var) {
  CU3D_CHECK(s.rows >= 2, "batch_norm: training needs at least 2 values per channel, got {}",
             s.rows);
  std::vector<double> mu(s.c, 0.0), var(s.c, 0.0);
  for (int j = 0; j < s.c; ++j) {
    for (int64_t r = 0; r < s.rows; ++r)
      mu[j] += x[r * s.c + j];
    mu[j] /= double(s.rows);
    for (int64_t r = 0; r < s.rows; ++r) {
      var[j] += (x[r * s.c + j] - mu[j]) * (x[r * s.c + j] - mu[j]);
    }
    var[j] /= double(s.rows);
    const double rs = 1.0 / std::sqrt(var[j] + double(eps));
    mean[j] = T(mu[j]);
    rstd[j] = T(rs);
    for (int64_t r = 0; r < s.rows; ++r) {
      y[r * s.c + j] = T((x[r * s.c + j] - mu[j]) * rs * gamma[j] + beta[j]);
    }
  }
  update_running(s, momentum, mu.data(), var.data(), running_mean, running_var);
}

template <typename T>
void batch_norm_bwd_naive(const BatchNormShape& s, const T* x, const T* gamma, const T* mean,
                          const T* rstd, const T* dy, bool batch_stats, T* dx, T* dgamma,
                          T* dbeta) {
  for (int j = 0; j < s.c; ++j) {
    double dg = 0.0, db = 0.0;
    for (int64_t r = 0; r < s.rows; ++r) {
      dg += dy[r * s.c + j] * (x[r * s.c + j] - double(mean[j])) * rstd[j];
      db += dy[r * s.c + j];
    }
    dgamma[j] = T(dg);
    dbeta[j] = T(db);
    const double n = double(s.rows);
    for (int64_t r = 0; r < s.rows; ++r) {
      const double xhat = (x[r * s.c + j] - double(mean[j])) * rstd[j];
      const double centred =
          batch_stats ? dy[r * s.c + j] - db / n - xhat * dg / n : double(dy[r * s.c + j]);
      dx[r * s.c + j] = T(double(gamma[j]) * rstd[j] * centred);
    }
  }
}

#define CU3D_INSTANTIATE(T)                                                                        \
  template void batch_norm_fwd_train<T>(const BatchNormShape&, const T*, const T*, const T*, T, T, \
                                        T*, T*, T*, T*, T*);                                       \
  template void batch_norm_fwd_eval<T>(const BatchNormShape&, const T*, const T*, const T*,        \
                                       const T*, const T*, T, T*, T*, T*);                         \
  template void batch_norm_bwd<T>(const BatchNormShape&, const T*, const T*, const T*, const T*,   \
                                  const T*, bool, T*, T*, T*);                                     \
  template void batch_norm_fwd_train_naive<T>(const BatchNormShape&, const T*, const T*, const T*, \
                                              T, T, T*, T*, T*, T*, T*);                           \
  template void batch_norm_bwd_naive<T>(const BatchNormShape&, const T*, const T*, const T*,       \
                                        const T*, const T*, bool, T*, T*, T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
