#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/activation.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

// Odd sizes, and one large enough to be threaded.
const int64_t kSizes[] = {1, 7, 1001, 70001};

// Random values kept at least 1e-3 away from the kink at 0, where a central difference with a
// 1e-6 step would straddle it.
std::vector<double> away_from_zero(int64_t n, std::mt19937_64& rng) {
  auto x = random_vector<double>(n, rng, -2.0, 2.0);
  for (double& v : x) {
    if (std::abs(v) < 1e-3) v += v < 0 ? -1e-3 : 1e-3;
  }
  return x;
}

template <typename T>
class ActivationTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ActivationTyped, FloatTypes);

TYPED_TEST(ActivationTyped, ForwardMatchesFormulas) {
  using T = TypeParam;
  std::mt19937_64 rng(31);
  for (int64_t n : kSizes) {
    const auto x = random_vector<T>(n, rng, -8.0, 8.0);
    auto relu = poisoned<T>(n), leaky = poisoned<T>(n), sig = poisoned<T>(n);
    relu_fwd<T>(n, x.data(), relu.data());
    leaky_relu_fwd<T>(n, x.data(), T(0.3), leaky.data());
    sigmoid_fwd<T>(n, x.data(), sig.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(relu[i], x[i] > 0 ? x[i] : T(0));
      ASSERT_EQ(leaky[i], x[i] > 0 ? x[i] : T(0.3) * x[i]);
      ASSERT_NEAR(sig[i], 1.0 / (1.0 + std::exp(-double(x[i]))), 4 * rounding_tolerance<T>());
    }
  }
}

TYPED_TEST(ActivationTyped, BackwardMatchesFormulas) {
  using T = TypeParam;
  std::mt19937_64 rng(32);
  for (int64_t n : kSizes) {
    const auto x = random_vector<T>(n, rng, -8.0, 8.0);
    const auto dy = random_vector<T>(n, rng);
    std::vector<T> y(n);
    auto dx = poisoned<T>(n);
    relu_fwd<T>(n, x.data(), y.data());
    relu_bwd<T>(n, y.data(), dy.data(), dx.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(dx[i], x[i] > 0 ? dy[i] : T(0));
    leaky_relu_fwd<T>(n, x.data(), T(0.2), y.data());
    leaky_relu_bwd<T>(n, y.data(), T(0.2), dy.data(), dx.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(dx[i], x[i] > 0 ? dy[i] : T(0.2) * dy[i]);
    sigmoid_fwd<T>(n, x.data(), y.data());
    sigmoid_bwd<T>(n, y.data(), dy.data(), dx.data());
    for (int64_t i = 0; i < n; ++i) {
      const double s = 1.0 / (1.0 + std::exp(-double(x[i])));
      ASSERT_NEAR(dx[i], dy[i] * s * (1 - s), 4 * rounding_tolerance<T>());
    }
  }
}

TEST(Activation, BackwardMatchesFiniteDifferences) {
  std::mt19937_64 rng(33);
  const int64_t n = 41;
  auto x = away_from_zero(n, rng);
  const auto w = random_vector<double>(n, rng);
  std::vector<double> y(n), dx(n);
  const auto check = [&](auto fwd, auto bwd) {
    const auto loss = [&] {
      fwd(x.data(), y.data());
      return weighted_sum(y, w);
    };
    loss();
    bwd(y.data(), w.data(), dx.data());
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, x), dx), 1e-6);
  };
  check([&](const double* in, double* out) { relu_fwd<double>(n, in, out); },
        [&](const double* out, const double* d, double* g) { relu_bwd<double>(n, out, d, g); });
  check([&](const double* in, double* out) { leaky_relu_fwd<double>(n, in, 0.1, out); },
        [&](const double* out, const double* d, double* g) {
          leaky_relu_bwd<double>(n, out, 0.1, d, g);
        });
  check([&](const double* in, double* out) { sigmoid_fwd<double>(n, in, out); },
        [&](const double* out, const double* d, double* g) { sigmoid_bwd<double>(n, out, d, g); });
}

// exp(-x) overflows float for x < -88.7; the stable form neither overflows nor loses the
// relative precision of tiny outputs.
TEST(Activation, SigmoidOfLargeInputs) {
  const std::vector<float> x = {-200.0f, -80.0f, -30.0f, 30.0f, 90.0f, 200.0f};
  std::vector<float> y(x.size());
  sigmoid_fwd<float>(int64_t(x.size()), x.data(), y.data());
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_NEAR(y[1] / std::exp(-80.0), 1.0, 1e-5);
  EXPECT_NEAR(y[2] / std::exp(-30.0), 1.0, 1e-5);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], 1.0f);
}

TEST(Activation, LeakyReluBackwardRejectsNegativeAlpha) {
  std::vector<float> y = {0.5f, -0.25f}, dy = {1.5f, -0.75f}, dx(2);
  EXPECT_THROW(leaky_relu_bwd<float>(2, y.data(), -0.1f, dy.data(), dx.data()), Error);
}

}  // namespace
}  // namespace cu3d::cpu
