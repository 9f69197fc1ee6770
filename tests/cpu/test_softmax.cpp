#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/softmax.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

// Rows of whole AVX-512 vectors (16, keras3d's 32 channels) and of partial ones (7, 101).
const SoftmaxShape kSoftmaxShapes[] = {{1, 1}, {3, 7},  {17, 101}, {4096, 10},
                                       {2, 2}, {3, 16}, {5, 32}};

// Softmax of one row in long double, straight from the definition.
template <typename T>
std::vector<long double> softmax_reference(const T* x, int cols) {
  long double max = x[0], sum = 0;
  for (int j = 1; j < cols; ++j)
    max = std::max<long double>(max, x[j]);
  std::vector<long double> y(cols);
  for (int j = 0; j < cols; ++j)
    sum += y[j] = std::exp((long double)x[j] - max);
  for (long double& v : y)
    v /= sum;
  return y;
}

template <typename T>
class SoftmaxTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SoftmaxTyped, FloatTypes);

TYPED_TEST(SoftmaxTyped, ForwardMatchesDefinition) {
  using T = TypeParam;
  std::mt19937_64 rng(41);
  for (const SoftmaxShape& s : kSoftmaxShapes) {
    const auto x = random_vector<T>(s.size(), rng, -6.0, 6.0);
    auto y = poisoned<T>(s.size());
    softmax_fwd<T>(s, x.data(), y.data());
    for (int64_t r = 0; r < s.rows; ++r) {
      const auto want = softmax_reference(&x[r * s.cols], s.cols);
      for (int j = 0; j < s.cols; ++j) {
        ASSERT_NEAR(y[r * s.cols + j], double(want[j]), rounding_tolerance<T>()) << r;
      }
    }
  }
}

// Logits of 1e4 overflow exp() in any precision unless the row maximum is subtracted first.
TEST(Softmax, LargeLogitsDoNotOverflow) {
  const SoftmaxShape s{2, 3};
  const std::vector<float> x = {1e4f, 1e4f - 1.0f, -1e4f, -5e3f, -5e3f, -5e3f};
  std::vector<float> y(s.size());
  softmax_fwd<float>(s, x.data(), y.data());
  const double e = std::exp(-1.0);
  EXPECT_NEAR(y[0], 1.0 / (1.0 + e), 1e-6);
  EXPECT_NEAR(y[1], e / (1.0 + e), 1e-6);
  EXPECT_EQ(y[2], 0.0f);
  for (int j = 3; j < 6; ++j)
    EXPECT_NEAR(y[j], 1.0 / 3.0, 1e-6);
}

// Small probabilities keep their relative precision over exp's whole float range (the vectorised
// exp's range reduction and polynomial): rows {0, -a} for a up to 87.
TEST(Softmax, SmallProbabilitiesAreRelativelyExact) {
  for (double a = 0; a < 87; a += 0.37) {
    const std::vector<float> x = {0.0f, float(-a)};
    std::vector<float> y(2);
    softmax_fwd<float>({1, 2}, x.data(), y.data());
    const long double e = std::exp((long double)x[1]);
    const double want = double(e / (1 + e));
    EXPECT_NEAR(y[1] / want, 1.0, 1e-6) << "a = " << a;
  }
}

// A NaN in a row makes every output of that row NaN and leaves the other rows alone.
TEST(Softmax, NanPropagatesThroughItsRow) {
  std::vector<float> x(2 * 20, 0.5f), y(x.size());
  x[3] = std::nanf("");
  softmax_fwd<float>({2, 20}, x.data(), y.data());
  for (int j = 0; j < 20; ++j) {
    EXPECT_TRUE(std::isnan(y[j])) << j;
    EXPECT_FLOAT_EQ(y[20 + j], 1.0f / 20) << j;
  }
}

TEST(Softmax, BackwardMatchesFiniteDifferences) {
  for (const SoftmaxShape& s : {SoftmaxShape{3, 5}, SoftmaxShape{1, 9}, SoftmaxShape{4, 1}}) {
    std::mt19937_64 rng(42);
    auto x = random_vector<double>(s.size(), rng, -3.0, 3.0);
    const auto w = random_vector<double>(s.size(), rng);
    std::vector<double> y(s.size()), dx(s.size());
    const auto loss = [&] {
      softmax_fwd<double>(s, x.data(), y.data());
      return weighted_sum(y, w);
    };
    loss();
    softmax_bwd<double>(s, y.data(), w.data(), dx.data());
    const auto numeric = numeric_gradient(loss, x);
    // With one column the softmax is constant 1 and both gradients are exactly zero.
    const double err =
        s.cols == 1 ? max_scaled_diff(numeric, dx) : norm_relative_error(numeric, dx);
    EXPECT_LT(err, 1e-6) << s.rows << "x" << s.cols;
  }
}

TYPED_TEST(SoftmaxTyped, BackwardIsThreadedConsistently) {
  using T = TypeParam;
  const SoftmaxShape s{5000, 13};
  std::mt19937_64 rng(43);
  const auto x = random_vector<T>(s.size(), rng, -4.0, 4.0);
  const auto dy = random_vector<T>(s.size(), rng);
  std::vector<T> y(s.size());
  auto dx = poisoned<T>(s.size());
  softmax_fwd<T>(s, x.data(), y.data());
  softmax_bwd<T>(s, y.data(), dy.data(), dx.data());
  for (int64_t r = 0; r < s.rows; ++r) {
    double dot = 0;
    for (int j = 0; j < s.cols; ++j)
      dot += double(dy[r * s.cols + j]) * y[r * s.cols + j];
    for (int j = 0; j < s.cols; ++j) {
      const int64_t i = r * s.cols + j;
      ASSERT_NEAR(dx[i], y[i] * (dy[i] - dot), rounding_tolerance<T>());
    }
  }
}

}  // namespace
}  // namespace cu3d::cpu
