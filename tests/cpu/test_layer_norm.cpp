#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/layer_norm.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

// Both variants and odd sizes: one group per sample (C3D), one per position (m = 1), a group
// large enough to be split into several reduction chunks and threaded, and single elements.
const LayerNormShape kShapes[] = {
    {2, 3 * 5 * 7, 5}, {37, 1, 13}, {3, 2000, 17}, {1, 1, 1}, {4, 9, 1}, {1, 1, 33},
};

template <typename T>
class LayerNormTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LayerNormTyped, FloatTypes);

TYPED_TEST(LayerNormTyped, ForwardMatchesNaive) {
  using T = TypeParam;
  std::mt19937_64 rng(11);
  for (const LayerNormShape& s : kShapes) {
    // A mean far from zero: the fast path must not lose precision to cancellation.
    const auto x = random_vector<T>(s.size(), rng, 3.0, 5.0);
    const auto gamma = random_vector<T>(s.c, rng, 0.5, 1.5);
    const auto beta = random_vector<T>(s.c, rng);
    auto y = poisoned<T>(s.size()), mean = poisoned<T>(s.groups), rstd = poisoned<T>(s.groups);
    auto y_ref = y, mean_ref = mean, rstd_ref = rstd;
    layer_norm_fwd<T>(s, x.data(), gamma.data(), beta.data(), T(1e-5), y.data(), mean.data(),
                      rstd.data());
    layer_norm_fwd_naive<T>(s, x.data(), gamma.data(), beta.data(), T(1e-5), y_ref.data(),
                            mean_ref.data(), rstd_ref.data());
    EXPECT_LT(max_scaled_diff(y, y_ref), 4 * rounding_tolerance<T>()) << s.groups << "," << s.m;
    EXPECT_LT(max_scaled_diff(mean, mean_ref), rounding_tolerance<T>());
    EXPECT_LT(max_scaled_diff(rstd, rstd_ref), rounding_tolerance<T>());
  }
}

TYPED_TEST(LayerNormTyped, BackwardMatchesNaive) {
  using T = TypeParam;
  std::mt19937_64 rng(12);
  for (const LayerNormShape& s : kShapes) {
    const auto x = random_vector<T>(s.size(), rng, -2.0, 3.0);
    const auto gamma = random_vector<T>(s.c, rng, 0.5, 1.5);
    const auto beta = random_vector<T>(s.c, rng);
    const auto dy = random_vector<T>(s.size(), rng);
    std::vector<T> y(s.size()), mean(s.groups), rstd(s.groups);
    layer_norm_fwd<T>(s, x.data(), gamma.data(), beta.data(), T(1e-5), y.data(), mean.data(),
                      rstd.data());
    auto dx = poisoned<T>(s.size()), dgamma = poisoned<T>(s.c), dbeta = poisoned<T>(s.c);
    auto dx_ref = dx, dgamma_ref = dgamma, dbeta_ref = dbeta;
    layer_norm_bwd<T>(s, x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(),
                      dgamma.data(), dbeta.data());
    layer_norm_bwd_naive<T>(s, x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(),
                            dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
    EXPECT_LT(max_scaled_diff(dx, dx_ref), 4 * rounding_tolerance<T>()) << s.groups << "," << s.m;
    EXPECT_LT(max_scaled_diff(dgamma, dgamma_ref), rounding_tolerance<T>());
    EXPECT_LT(max_scaled_diff(dbeta, dbeta_ref), rounding_tolerance<T>());
  }
}

// An independent check of the specification: with gamma = 1 and beta = 0 every group of the
// output has mean 0 and (biased) variance var / (var + eps).
TEST(LayerNorm, GroupsAreStandardized) {
  const LayerNormShape s{3, 40, 7};
  std::mt19937_64 rng(13);
  const auto x = random_vector<double>(s.size(), rng, -4.0, 10.0);
  const std::vector<double> gamma(s.c, 1.0), beta(s.c, 0.0);
  std::vector<double> y(s.size()), mean(s.groups), rstd(s.groups);
  layer_norm_fwd<double>(s, x.data(), gamma.data(), beta.data(), 0.0, y.data(), mean.data(),
                         rstd.data());
  const int64_t n = s.m * s.c;
  for (int64_t g = 0; g < s.groups; ++g) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < n; ++i)
      mu += y[g * n + i] / n;
    for (int64_t i = 0; i < n; ++i)
      var += (y[g * n + i] - mu) * (y[g * n + i] - mu) / n;
    EXPECT_NEAR(mu, 0.0, 1e-12);
    EXPECT_NEAR(var, 1.0, 1e-12);
  }
}

// dx, dgamma, dbeta of sum(y * w) against central differences, in double.
TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  for (const LayerNormShape& s : {LayerNormShape{2, 6, 3}, LayerNormShape{5, 1, 4}}) {
    std::mt19937_64 rng(14);
    auto x = random_vector<double>(s.size(), rng);
    auto gamma = random_vector<double>(s.c, rng, 0.5, 1.5);
    auto beta = random_vector<double>(s.c, rng);
    const auto w = random_vector<double>(s.size(), rng);
    const double eps = 1e-3;
    std::vector<double> y(s.size()), mean(s.groups), rstd(s.groups);
    const auto loss = [&] {
      layer_norm_fwd<double>(s, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(),
                             rstd.data());
      return weighted_sum(y, w);
    };
    loss();
    std::vector<double> dx(s.size()), dgamma(s.c), dbeta(s.c);
    layer_norm_bwd<double>(s, x.data(), gamma.data(), mean.data(), rstd.data(), w.data(), dx.data(),
                           dgamma.data(), dbeta.data());
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, x), dx), 1e-6);
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, gamma), dgamma), 1e-6);
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, beta), dbeta), 1e-6);
  }
}

}  // namespace
}  // namespace cu3d::cpu
