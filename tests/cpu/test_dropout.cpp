#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/dropout.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

template <typename T>
class DropoutTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(DropoutTyped, FloatTypes);

// Sizes that are not multiples of the 4 elements per Philox block, and one that is threaded.
TYPED_TEST(DropoutTyped, ForwardMatchesNaive) {
  using T = TypeParam;
  std::mt19937_64 rng(61);
  for (int64_t n : {1, 3, 6, 1001, 50003}) {
    const auto x = random_vector<T>(n, rng, 0.5, 2.0);
    auto y = poisoned<T>(n), y_ref = poisoned<T>(n);
    dropout_fwd<T>(n, x.data(), 0.3, 77, 5, y.data());
    dropout_fwd_naive<T>(n, x.data(), 0.3, 77, 5, y_ref.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(y[i], y_ref[i]) << i;
  }
}

TEST(Dropout, KeepsOneMinusPAndScalesKeptValues) {
  const int64_t n = 200000;
  std::mt19937_64 rng(62);
  const auto x = random_vector<float>(n, rng, 0.5, 2.0);
  for (double p : {0.1, 0.5, 0.8}) {
    std::vector<float> y(n);
    dropout_fwd<float>(n, x.data(), p, 1234, 0, y.data());
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (y[i] == 0.0f) continue;
      ++kept;
      ASSERT_NEAR(y[i], x[i] / (1.0 - p), 1e-6 * y[i]);
    }
    // Binomial standard deviation sqrt(p (1-p) / n) <= 0.0012: six of them.
    EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.007) << p;
  }
}

TEST(Dropout, MaskDependsOnSeedAndOffset) {
  const int64_t n = 1000;
  const std::vector<double> x(n, 1.0);
  std::vector<double> a(n), b(n), c(n), a_again(n);
  dropout_fwd<double>(n, x.data(), 0.5, 1, 0, a.data());
  dropout_fwd<double>(n, x.data(), 0.5, 2, 0, b.data());
  dropout_fwd<double>(n, x.data(), 0.5, 1, 1, c.data());
  dropout_fwd<double>(n, x.data(), 0.5, 1, 0, a_again.data());
  EXPECT_EQ(a, a_again);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

// Dropout is linear for a fixed mask, so the backward is its adjoint:
// <fwd(x), w> == <x, bwd(w)> up to rounding, which can only hold when both passes
// draw the same mask.
TYPED_TEST(DropoutTyped, BackwardIsTheAdjointWithTheSameMask) {
  using T = TypeParam;
  const int64_t n = 4099;
  std::mt19937_64 rng(63);
  const auto x = random_vector<T>(n, rng), w = random_vector<T>(n, rng);
  std::vector<T> y(n), dx(n);
  dropout_fwd<T>(n, x.data(), 0.4, 99, 3, y.data());
  dropout_bwd<T>(n, w.data(), 0.4, 99, 3, dx.data());
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < n; ++i) {
    lhs += double(y[i]) * w[i];
    rhs += double(x[i]) * dx[i];
    ASSERT_EQ(y[i] == T(0), dx[i] == T(0)) << i;
  }
  EXPECT_NEAR(lhs, rhs, 10 * rounding_tolerance<T>());
}

TEST(Dropout, RateZeroIsIdentityAndBadRatesThrow) {
  std::mt19937_64 rng(64);
  const auto x = random_vector<float>(37, rng);
  std::vector<float> y(37);
  dropout_fwd<float>(37, x.data(), 0.0, 5, 6, y.data());
  EXPECT_EQ(y, x);
  EXPECT_THROW(dropout_fwd<float>(37, x.data(), 1.0, 5, 6, y.data()), Error);
  EXPECT_THROW(dropout_bwd<float>(37, x.data(), -0.1, 5, 6, y.data()), Error);
}

}  // namespace
}  // namespace cu3d::cpu
