#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/softmax_xent.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

const SoftmaxXentShape kXentShapes[] = {{1, 1}, {5, 3}, {33, 101}, {3000, 11}};

std::vector<int32_t> random_labels(int64_t rows, int classes, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> dist(0, classes - 1);
  std::vector<int32_t> labels(rows);
  for (int32_t& l : labels)
    l = dist(rng);
  return labels;
}

// mean_r (logsumexp(z_r) - z_r[label]) in long double, from the definition.
template <typename T>
double xent_reference(const SoftmaxXentShape& s, const std::vector<T>& z,
                      const std::vector<int32_t>& labels) {
  long double total = 0;
  for (int64_t r = 0; r < s.rows; ++r) {
    long double max = z[r * s.classes], sum = 0;
    for (int j = 1; j < s.classes; ++j)
      max = std::max<long double>(max, z[r * s.classes + j]);
    for (int j = 0; j < s.classes; ++j)
      sum += std::exp(z[r * s.classes + j] - max);
    total += std::log(sum) + max - z[r * s.classes + labels[r]];
  }
  return double(total / s.rows);
}

template <typename T>
class SoftmaxXentTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SoftmaxXentTyped, FloatTypes);

TYPED_TEST(SoftmaxXentTyped, ForwardMatchesDefinition) {
  using T = TypeParam;
  std::mt19937_64 rng(51);
  for (const SoftmaxXentShape& s : kXentShapes) {
    const auto z = random_vector<T>(s.size(), rng, -5.0, 5.0);
    const auto labels = random_labels(s.rows, s.classes, rng);
    auto probs = poisoned<T>(s.size()), loss = poisoned<T>(1);
    softmax_xent_fwd<T>(s, z.data(), labels.data(), probs.data(), loss.data());
    EXPECT_NEAR(loss[0], xent_reference(s, z, labels), 4 * rounding_tolerance<T>());
    std::vector<T> softmax(s.size());
    softmax_fwd<T>({s.rows, s.classes}, z.data(), softmax.data());
    EXPECT_LT(max_scaled_diff(probs, softmax), rounding_tolerance<T>());
  }
}

// Logits of +-1e4 (exp overflows at 89 in float and 710 in double) give the exact finite loss.
TYPED_TEST(SoftmaxXentTyped, LargeLogitsGiveFiniteLoss) {
  using T = TypeParam;
  const SoftmaxXentShape s{3, 3};
  const std::vector<T> z = {T(1e4),  T(-1e4), T(0),    T(1e4), T(1e4 - 2),
                            T(-1e4), T(-3e4), T(-3e4), T(-3e4)};
  const std::vector<int32_t> labels = {1, 0, 2};
  std::vector<T> probs(s.size()), loss(1);
  softmax_xent_fwd<T>(s, z.data(), labels.data(), probs.data(), loss.data());
  // Row 0: -log p[1] = 2e4. Row 1: log(1 + e^-2). Row 2: log 3.
  const double want = (2e4 + std::log1p(std::exp(-2.0)) + std::log(3.0)) / 3;
  EXPECT_TRUE(std::isfinite(double(loss[0])));
  EXPECT_NEAR(loss[0], want, want * 4 * rounding_tolerance<T>());
  for (T p : probs)
    EXPECT_TRUE(std::isfinite(double(p)));
}

TEST(SoftmaxXent, BackwardMatchesFiniteDifferences) {
  const SoftmaxXentShape s{4, 5};
  std::mt19937_64 rng(52);
  auto z = random_vector<double>(s.size(), rng, -3.0, 3.0);
  const auto labels = random_labels(s.rows, s.classes, rng);
  const double dloss = 0.7;
  std::vector<double> probs(s.size()), loss(1), dz(s.size());
  const auto scaled_loss = [&] {
    softmax_xent_fwd<double>(s, z.data(), labels.data(), probs.data(), loss.data());
    return dloss * loss[0];
  };
  scaled_loss();
  softmax_xent_bwd<double>(s, probs.data(), labels.data(), &dloss, dz.data());
  EXPECT_LT(norm_relative_error(numeric_gradient(scaled_loss, z), dz), 1e-6);
}

TYPED_TEST(SoftmaxXentTyped, BackwardIsProbsMinusOneHot) {
  using T = TypeParam;
  const SoftmaxXentShape s{2000, 17};
  std::mt19937_64 rng(53);
  const auto z = random_vector<T>(s.size(), rng, -4.0, 4.0);
  const auto labels = random_labels(s.rows, s.classes, rng);
  std::vector<T> probs(s.size()), loss(1);
  auto dz = poisoned<T>(s.size());
  const T dloss = T(1.5);
  softmax_xent_fwd<T>(s, z.data(), labels.data(), probs.data(), loss.data());
  softmax_xent_bwd<T>(s, probs.data(), labels.data(), &dloss, dz.data());
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int j = 0; j < s.classes; ++j) {
      const int64_t i = r * s.classes + j;
      const double want = (probs[i] - (j == labels[r] ? 1.0 : 0.0)) * 1.5 / s.rows;
      ASSERT_NEAR(dz[i], want, 1e-3 * rounding_tolerance<T>());
    }
  }
}

TEST(SoftmaxXent, LabelOutOfRangeNamesRowLabelAndClasses) {
  const SoftmaxXentShape s{3, 4};
  const std::vector<float> z = {0.5f,  -1.0f, 2.0f, 0.25f, 1.0f, 1.5f,
                                -0.5f, 0.75f, 0.1f, 0.2f,  0.3f, 0.4f};
  std::vector<float> probs(s.size()), loss(1), dz(s.size());
  for (const std::vector<int32_t>& labels :
       {std::vector<int32_t>{0, 3, 4}, std::vector<int32_t>{0, 3, -1}}) {
    try {
      softmax_xent_fwd<float>(s, z.data(), labels.data(), probs.data(), loss.data());
      FAIL() << "expected an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("label " + std::to_string(labels[2]) + " in row 2"), std::string::npos)
          << msg;
      EXPECT_NE(msg.find("[0, 4)"), std::string::npos) << msg;
    }
    const float dloss = 1.0f;
    EXPECT_THROW(softmax_xent_bwd<float>(s, probs.data(), labels.data(), &dloss, dz.data()), Error);
  }
}

}  // namespace
}  // namespace cu3d::cpu
