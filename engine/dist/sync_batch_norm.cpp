#include "engine/dist/sync_batch_norm.h"

#include <cmath>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "kernels/error.h"

namespace cu3d::dist {
namespace {

// Per-channel statistics of the global batch.
struct Stats {
  double rows = 0;  // over all ranks
  std::vector<double> mean, var;
};

Stats global_stats(const float* x, int64_t rows, int c, Communicator& comm) {
  std::vector<double> sums(size_t(c) + 1, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < c; ++j)
      sums[size_t(j)] += x[r * c + j];
  sums[size_t(c)] = double(rows);
  comm.all_reduce_sum(sums.data(), sums.size());
  Stats s{sums[size_t(c)], std::vector<double>(sums.begin(), sums.end() - 1),
          std::vector<double>(size_t(c), 0.0)};
  CU3D_CHECK(s.rows >= 2,
             "sync batch norm: training needs at least 2 values per channel over all ranks, got "
             "{}; use a larger --batch",
             s.rows);
  for (double& m : s.mean)
    m /= s.rows;
  // Centred second pass, as the batch_norm kernel: no cancellation when |mean| >> std.
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < c; ++j) {
      const double d = x[r * c + j] - s.mean[size_t(j)];
      s.var[size_t(j)] += d * d;
    }
  comm.all_reduce_sum(s.var.data(), s.var.size());
  for (double& v : s.var)
    v /= s.rows;
  return s;
}

void update_running(const Stats& s, double momentum, const Tensor& running_mean,
                    const Tensor& running_var) {
  if (!running_mean.defined()) return;
  float* rm = running_mean.data<float>();
  float* rv = running_var.data<float>();
  const double bessel = s.rows / (s.rows - 1);
  for (size_t j = 0; j < s.mean.size(); ++j) {
    rm[j] = float((1.0 - momentum) * rm[j] + momentum * s.mean[j]);
    rv[j] = float((1.0 - momentum) * rv[j] + momentum * s.var[j] * bessel);
  }
}

// dx = gamma * rstd * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N), the sums over all ranks'
// rows; returns dx, and this rank's dgamma = sum(dy * xhat), dbeta = sum(dy).
std::vector<Tensor> backward(const Tensor& x, const Tensor& gamma, const Tensor& dy,
                             const std::vector<float>& mean, const std::vector<float>& rstd,
                             double global_rows, Communicator& comm) {
  const int c = int(mean.size());
  const int64_t rows = x.numel() / c;
  const float* xp = x.data<float>();
  const float* g = dy.data<float>();
  std::vector<double> sums(2 * size_t(c), 0.0);  // sum(dy), then sum(dy * xhat)
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < c; ++j) {
      const double xhat = (double(xp[r * c + j]) - mean[size_t(j)]) * rstd[size_t(j)];
      sums[size_t(j)] += g[r * c + j];
      sums[size_t(c + j)] += g[r * c + j] * xhat;
    }
  Tensor dgamma = Tensor::zeros(gamma.shape()), dbeta = Tensor::zeros(gamma.shape());
  for (int j = 0; j < c; ++j) {
    dbeta.data<float>()[j] = float(sums[size_t(j)]);
    dgamma.data<float>()[j] = float(sums[size_t(c + j)]);
  }
  comm.all_reduce_sum(sums.data(), sums.size());
  Tensor dx = Tensor::empty_like(x);
  float* out = dx.data<float>();
  const float* gm = gamma.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < c; ++j) {
      const double xhat = (double(xp[r * c + j]) - mean[size_t(j)]) * rstd[size_t(j)];
      out[r * c + j] = float(gm[j] * rstd[size_t(j)] *
                             (g[r * c + j] - sums[size_t(j)] / global_rows -
                              xhat * sums[size_t(c + j)] / global_rows));
    }
  return {dx, dgamma, dbeta};
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, double momentum,
                       double eps, Communicator& comm) {
  CU3D_CHECK(x.defined() && x.dim() >= 2 && x.dtype() == DType::f32 && !x.device().is_cuda(),
             "sync batch norm: {} must be an f32 CPU activation with channels last (CUDA and "
             "other dtypes are not implemented; train without --sync-bn)",
             x.defined() ? x.str() : "undefined");
  const int c = int(x.size(-1));
  CU3D_CHECK(gamma.numel() == c && beta.numel() == c,
             "sync batch norm: gamma {} and beta {} must have {} channels", gamma.str(), beta.str(),
             c);
  const int64_t rows = x.numel() / c;
  const Stats s = global_stats(x.data<float>(), rows, c, comm);
  std::vector<float> mean(static_cast<size_t>(c)), rstd(static_cast<size_t>(c));
  for (int j = 0; j < c; ++j) {
    mean[size_t(j)] = float(s.mean[size_t(j)]);
    rstd[size_t(j)] = float(1.0 / std::sqrt(s.var[size_t(j)] + eps));
  }
  Tensor y = Tensor::empty_like(x);
  const float* xp = x.data<float>();
  const float* gm = gamma.data<float>();
  const float* bt = beta.data<float>();
  float* out = y.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < c; ++j)
      out[r * c + j] = (xp[r * c + j] - mean[size_t(j)]) * (gm[j] * rstd[size_t(j)]) + bt[j];
  {
    autograd::NoGradGuard no_grad;
    update_running(s, momentum, running_mean, running_var);
  }
  if (autograd::needs_grad({x, gamma, beta})) {
    const double global_rows = s.rows;
    autograd::record("sync_batch_norm", {x, gamma, beta}, {y},
                     [x, gamma, mean, rstd, global_rows, &comm](const std::vector<Tensor>& g) {
                       return backward(x, gamma, g[0], mean, rstd, global_rows, comm);
                     });
  }
  return y;
}

}  // namespace cu3d::dist
