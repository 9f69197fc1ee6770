#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

// Odd sizes, a single channel, and sizes that are threaded and split into several chunks.
const BatchNormShape kShapes[] = {{2, 1}, {7, 3}, {1000, 37}, {5003, 7}, {3, 64}};

template <typename T>
class BatchNormTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(BatchNormTyped, FloatTypes);

TYPED_TEST(BatchNormTyped, TrainForwardMatchesNaive) {
  using T = TypeParam;
  std::mt19937_64 rng(21);
  for (const BatchNormShape& s : kShapes) {
    const auto x = random_vector<T>(s.size(), rng, 2.0, 6.0);
    const auto gamma = random_vector<T>(s.c, rng, 0.5, 1.5);
    const auto beta = random_vector<T>(s.c, rng);
    auto rm = random_vector<T>(s.c, rng), rv = random_vector<T>(s.c, rng, 0.5, 2.0);
    auto rm_ref = rm, rv_ref = rv;
    auto y = poisoned<T>(s.size()), mean = poisoned<T>(s.c), rstd = poisoned<T>(s.c);
    auto y_ref = y, mean_ref = mean, rstd_ref = rstd;
    batch_norm_fwd_train<T>(s, x.data(), gamma.data(), beta.data(), T(1e-5), T(0.1), y.data(),
                            mean.data(), rstd.data(), rm.data(), rv.data());
    batch_norm_fwd_train_naive<T>(s, x.data(), gamma.data(), beta.data(), T(1e-5), T(0.1),
                                  y_ref.data(), mean_ref.data(), rstd_ref.data(), rm_ref.data(),
                                  rv_ref.data());
    EXPECT_LT(max_scaled_diff(y, y_ref), 4 * rounding_tolerance<T>()) << s.rows << "x" << s.c;
    EXPECT_LT(max_scaled_diff(mean, mean_ref), rounding_tolerance<T>());
    EXPECT_LT(max_scaled_diff(rstd, rstd_ref), rounding_tolerance<T>());
    EXPECT_LT(max_scaled_diff(rm, rm_ref), rounding_tolerance<T>());
    EXPECT_LT(max_scaled_diff(rv, rv_ref), rounding_tolerance<T>());
  }
}

TYPED_TEST(BatchNormTyped, BackwardMatchesNaive) {
  using T = TypeParam;
  std::mt19937_64 rng(22);
  for (const BatchNormShape& s : kShapes) {
    for (bool batch_stats : {true, false}) {
      const auto x = random_vector<T>(s.size(), rng, -1.0, 3.0);
      const auto gamma = random_vector<T>(s.c, rng, 0.5, 1.5);
      const auto mean = random_vector<T>(s.c, rng);
      const auto rstd = random_vector<T>(s.c, rng, 0.5, 2.0);
      const auto dy = random_vector<T>(s.size(), rng);
      auto dx = poisoned<T>(s.size()), dgamma = poisoned<T>(s.c), dbeta = poisoned<T>(s.c);
      auto dx_ref = dx, dgamma_ref = dgamma, dbeta_ref = dbeta;
      batch_norm_bwd<T>(s, x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), batch_stats,
                        dx.data(), dgamma.data(), dbeta.data());
      batch_norm_bwd_naive<T>(s, x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(),
                              batch_stats, dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
      EXPECT_LT(max_scaled_diff(dx, dx_ref), 4 * rounding_tolerance<T>()) << s.rows;
      EXPECT_LT(max_scaled_diff(dgamma, dgamma_ref), rounding_tolerance<T>());
      EXPECT_LT(max_scaled_diff(dbeta, dbeta_ref), rounding_tolerance<T>());
    }
  }
}

// The PyTorch convention, computed here from scratch: output channels have mean beta and
// biased variance gamma^2 * var / (var + eps); running stats move by `momentum` towards the
// batch mean and the unbiased batch variance.
TEST(BatchNorm, TrainingStatisticsAndRunningUpdate) {
  const BatchNormShape s{50, 3};
  std::mt19937_64 rng(23);
  const auto x = random_vector<double>(s.size(), rng, -3.0, 5.0);
  const auto gamma = random_vector<double>(s.c, rng, 0.5, 1.5);
  const auto beta = random_vector<double>(s.c, rng);
  const auto rm0 = random_vector<double>(s.c, rng), rv0 = random_vector<double>(s.c, rng, 1, 2);
  auto rm = rm0, rv = rv0;
  std::vector<double> y(s.size()), mean(s.c), rstd(s.c);
  batch_norm_fwd_train<double>(s, x.data(), gamma.data(), beta.data(), 0.0, 0.25, y.data(),
                               mean.data(), rstd.data(), rm.data(), rv.data());
  for (int j = 0; j < s.c; ++j) {
    double mu = 0, var = 0, y_mu = 0, y_var = 0;
    for (int64_t r = 0; r < s.rows; ++r)
      mu += x[r * s.c + j] / s.rows;
    for (int64_t r = 0; r < s.rows; ++r)
      var += std::pow(x[r * s.c + j] - mu, 2) / s.rows;
    for (int64_t r = 0; r < s.rows; ++r)
      y_mu += y[r * s.c + j] / s.rows;
    for (int64_t r = 0; r < s.rows; ++r)
      y_var += std::pow(y[r * s.c + j] - y_mu, 2) / s.rows;
    EXPECT_NEAR(y_mu, beta[j], 1e-12);
    EXPECT_NEAR(y_var, gamma[j] * gamma[j], 1e-12);
    EXPECT_NEAR(rm[j], 0.75 * rm0[j] + 0.25 * mu, 1e-12);
    EXPECT_NEAR(rv[j], 0.75 * rv0[j] + 0.25 * var * s.rows / (s.rows - 1), 1e-12);
  }
}

TEST(BatchNorm, EvalUsesRunningStatistics) {
  const BatchNormShape s{9, 5};
  std::mt19937_64 rng(24);
  const auto x = random_vector<float>(s.size(), rng);
  const auto gamma = random_vector<float>(s.c, rng, 0.5, 1.5);
  const auto beta = random_vector<float>(s.c, rng);
  const auto rm = random_vector<float>(s.c, rng), rv = random_vector<float>(s.c, rng, 0.5, 2);
  auto y = poisoned<float>(s.size()), mean = poisoned<float>(s.c), rstd = poisoned<float>(s.c);
  batch_norm_fwd_eval<float>(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-3f,
                             y.data(), mean.data(), rstd.data());
  for (int64_t i = 0; i < s.size(); ++i) {
    const int j = int(i % s.c);
    const double want = (x[i] - rm[j]) / std::sqrt(double(rv[j]) + 1e-3) * gamma[j] + beta[j];
    EXPECT_NEAR(y[i], want, 1e-5);
  }
  for (int j = 0; j < s.c; ++j)
    EXPECT_EQ(mean[j], rm[j]);
}

// dx, dgamma, dbeta of sum(y * w) against central differences, for both modes, in double.
TEST(BatchNorm, BackwardMatchesFiniteDifferences) {
  const BatchNormShape s{6, 3};
  for (bool training : {true, false}) {
    std::mt19937_64 rng(25);
    auto x = random_vector<double>(s.size(), rng);
    auto gamma = random_vector<double>(s.c, rng, 0.5, 1.5);
    auto beta = random_vector<double>(s.c, rng);
    const auto rm = random_vector<double>(s.c, rng), rv = random_vector<double>(s.c, rng, 1, 2);
    const auto w = random_vector<double>(s.size(), rng);
    std::vector<double> y(s.size()), mean(s.c), rstd(s.c);
    const auto loss = [&] {
      if (training) {
        batch_norm_fwd_train<double>(s, x.data(), gamma.data(), beta.data(), 1e-3, 0.1, y.data(),
                                     mean.data(), rstd.data(), nullptr, nullptr);
      } else {
        batch_norm_fwd_eval<double>(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                    1e-3, y.data(), mean.data(), rstd.data());
      }
      return weighted_sum(y, w);
    };
    loss();
    std::vector<double> dx(s.size()), dgamma(s.c), dbeta(s.c);
    batch_norm_bwd<double>(s, x.data(), gamma.data(), mean.data(), rstd.data(), w.data(), training,
                           dx.data(), dgamma.data(), dbeta.data());
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, x), dx), 1e-6) << training;
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, gamma), dgamma), 1e-6) << training;
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, beta), dbeta), 1e-6) << training;
  }
}

TEST(BatchNorm, TrainingOnOneRowThrows) {
  const BatchNormShape s{1, 4};
  std::vector<float> x(4, 1.5f), g(4, 1.0f), b(4, 0.5f), y(4), mean(4), rstd(4);
  try {
    batch_norm_fwd_train<float>(s, x.data(), g.data(), b.data(), 1e-5f, 0.1f, y.data(), mean.data(),
                                rstd.data(), nullptr, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rows=1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cu3d::cpu
