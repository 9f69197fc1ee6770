#include "kernels/cpu/layer_norm.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/row_reduce.h"

namespace cu3d::cpu {

template <typename T>
void layer_norm_fwd(const LayerNormShape& s, const T* x, const T* gamma, const T* beta, T eps, T* y,
                    T* mean, T* rstd) {
  const int c = s.c;
  const double count = double(s.m) * c;
  // Two passes (mean, then centred squares) rather than sum and sum of squares: the one-pass
  // formula cancels catastrophically when |mean| >> std.
  std::vector<double> mu(s.groups), var(s.groups);
  sum_per_group<1>(
      s.groups, s.m, c,
      [&](int64_t r, double* acc) {
        const T* xr = x + r * c;
        double a = 0.0;
        for (int j = 0; j < c; ++j)
          a += xr[j];
        acc[0] += a;
      },
      mu.data());
  for (double& v : mu)
    v /= count;
  sum_per_group<1>(
      s.groups, s.m, c,
      [&](int64_t r, double* acc) {
        const T* xr = x + r * c;
        const double g_mean = mu[r / s.m];
        double a = 0.0;
        for (int j = 0; j < c; ++j)
          a += (xr[j] - g_mean) * (xr[j] - g_mean);
        acc[0] += a;
      },
      var.data());
  for (int64_t g = 0; g < s.groups; ++g) {
    mean[g] = T(mu[g]);
    rstd[g] = T(1.0 / std::sqrt(var[g] / count + double(eps)));
  }
  const int64_t rows = s.rows();
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t g = r / s.m;
    const T g_mean = mean[g], g_rstd = rstd[g];
    const T* xr = x + r * c;
    T* yr = y + r * c;
    for (int j = 0; j < c; ++j)
      yr[j] = (xr[j] - g_mean) * g_rstd * gamma[j] + beta[j];
  }
}

template <typename T>
void layer_norm_bwd(const LayerNormShape& s, const T* x, const T* gamma, const T* mean,
                    const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
  const int c = s.c;
  const double count = double(s.m) * c;
  // Per group: sums of g = dy * gamma and of g * xhat.
  std::vector<double> sums(2 * s.groups);
  sum_per_group<2>(
      s.groups, s.m, c,
      [&](int64_t r, double* acc) {
        const int64_t g = r / s.m;
        const double g_mean = mean[g], g_rstd = rstd[g];
        const T* xr = x + r * c;
        const T* dyr = dy + r * c;
        double a = 0.0, b = 0.0;
        for (int j = 0; j < c; ++j) {
          const double gj = double(dyr[j]) * gamma[j];
          a += gj;
          b += gj * (xr[j] - g_mean) * g_rstd;
        }
        acc[0] += a;
        acc[1] += b;
      },
      sums.data());
  std::vector<double> param_sums(2 * int64_t(c));
  sum_per_channel<2>(
      s.rows(), c,
      [&](int64_t r, double* acc) {
        const int64_t g = r / s.m;
        const double g_mean = mean[g], g_rstd = rstd[g];
        const T* xr = x + r * c;
        const T* dyr = dy + r * c;
        for (int j = 0; j < c; ++j) {
          acc[j] += dyr[j] * (xr[j] - g_mean) * g_rstd;
          acc[c + j] += dyr[j];
        }
      },
      param_sums.data());
  for (int j = 0; j < c; ++j) {
    dgamma[j] = T(param_sums[j]);
    dbeta[j] = T(param_sums[c + j]);
  }
  const int64_t rows = s.rows();
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t g = r / s.m;
    const double g_mean = mean[g], g_rstd = rstd[g];
    const double mean_g = sums[2 * g] / count, mean_gx = sums[2 * g + 1] / count;
    const T* xr = x + r * c;
    const T* dyr = dy + r * c;
    T* dxr = dx + r * c;
    for (int j = 0; j < c; ++j) {
      const double xhat = (xr[j] - g_mean) * g_rstd;
      dxr[j] = T(g_rstd * (double(dyr[j]) * gamma[j] - mean_g - xhat * mean_gx));
    }
  }
}

template <typename T>
void layer_norm_fwd_naive(const LayerNormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                          T* y, T* mean, T* rstd) {
  const int64_t n = s.m * s.c;
  for (int64_t g = 0; g < s.groups; ++g) {
    const T* xg = x + g * n;
    double mu = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; ++i)
      mu += xg[i];
    mu /= double(n);
    for (int64_t i = 0; i < n; ++i)
      var += (xg[i] - mu) * (xg[i] - mu);
    const double rs = 1.0 / std::sqrt(var / double(n) + double(eps));
    mean[g] = T(mu);
    rstd[g] = T(rs);
    for (int64_t i = 0; i < n; ++i) {
      const int j = int(i % s.c);
      y[g * n + i] = T((xg[i] - mu) * rs * gamma[j] + beta[j]);
    }
  }
}

template <typename T>
void layer_norm_bwd_naive(const LayerNormShape& s, const T* x, const T* gamma, const T* mean,
                          const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
  const int64_t n = s.m * s.c;
  std::vector<double> dg(s.c, 0.0), db(s.c, 0.0);
  for (int64_t g = 0; g < s.groups; ++g) {
    const double mu = mean[g], rs = rstd[g];
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const int j = int(i % s.c);
      const double xhat = (x[g * n + i] - mu) * rs;
      sum_g += double(dy[g * n + i]) * gamma[j];
      sum_gx += double(dy[g * n + i]) * gamma[j] * xhat;
      dg[j] += dy[g * n + i] * xhat;
      db[j] += dy[g * n + i];
    }
    for (int64_t i = 0; i < n; ++i) {
      const int j = int(i % s.c);
      const double xhat = (x[g * n + i] - mu) * rs;
      const double gi = double(dy[g * n + i]) * gamma[j];
      dx[g * n + i] = T(rs * (gi - sum_g / double(n) - xhat * sum_gx / double(n)));
    }
  }
  for (int j = 0; j < s.c; ++j) {
    dgamma[j] = T(dg[j]);
    dbeta[j] = T(db[j]);
  }
}

#define CU3D_INSTANTIATE(T)                                                                       \
  template void layer_norm_fwd<T>(const LayerNormShape&, const T*, const T*, const T*, T, T*, T*, \
                                  T*);                                                            \
  template void layer_norm_bwd<T>(const LayerNormShape&, const T*, const T*, const T*, const T*,  \
                                  const T*, T*, T*, T*);                                          \
  template void layer_norm_fwd_naive<T>(const LayerNormShape&, const T*, const T*, const T*, T,   \
                                        T*, T*, T*);                                              \
  template void layer_norm_bwd_naive<T>(const LayerNormShape&, const T*, const T*, const T*,      \
                                        const T*, const T*, T*, T*, T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
