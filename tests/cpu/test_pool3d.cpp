#include "kernels/cpu/pool3d.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/activation.h"

namespace cu3d::cpu {
namespace {

using kernel_testing::max_scaled_diff;
using kernel_testing::poisoned;
using kernel_testing::random_vector;
using kernel_testing::rounding_tolerance;

struct PoolCase {
  std::string name;
  Pool3dShape s;
};

std::vector<PoolCase> cases() {
  const Padding same = Padding::same, valid = Padding::valid, expl = Padding::explicit_;
  return {
      {"2x2x2 stride 2 (C3D pool2)",
       Pool3dShape::make(2, {4, 6, 8}, 5, {2, 2, 2}, {2, 2, 2}, valid)},
      {"1x2x2 stride 1,2,2 (C3D pool1)",
       Pool3dShape::make(2, {3, 6, 6}, 4, {1, 2, 2}, {1, 2, 2}, valid)},
      {"C3D pool5: 2x7x7 pad 0,1,1 -> 1x4x4",
       Pool3dShape::make(1, {2, 7, 7}, 20, {2, 2, 2}, {2, 2, 2}, expl, {0, 1, 1})},
      {"3x3x3 stride 2 same on odd sizes",
       Pool3dShape::make(2, {5, 7, 3}, 3, {3, 3, 3}, {2, 2, 2}, same)},
      {"2x2x2 stride 2 same on odd sizes (padding after only)",
       Pool3dShape::make(1, {3, 5, 7}, 17, {2, 2, 2}, {2, 2, 2}, same)},
      {"3x3x3 stride 2 Caffe ceil",
       Pool3dShape::make(2, {5, 6, 7}, 3, {3, 3, 3}, {2, 2, 2}, valid, {0, 0, 0}, true)},
      {"3x3x3 stride 2 pad 1 Caffe ceil",
       Pool3dShape::make(1, {4, 6, 9}, 2, {3, 3, 3}, {2, 2, 2}, expl, {1, 1, 1}, true)},
      {"3x3x3 stride 1 pad 1 (overlapping)",
       Pool3dShape::make(1, {3, 4, 5}, 33, {3, 3, 3}, {1, 1, 1}, expl, {1, 1, 1})},
      {"pool2d 3x3 stride 2 Caffe ceil",
       Pool3dShape::make(2, {1, 9, 11}, 3, {1, 3, 3}, {1, 2, 2}, valid, {0, 0, 0}, true)},
      {"pool2d 2x2 same", Pool3dShape::make(3, {1, 5, 4}, 1, {1, 2, 2}, {1, 2, 2}, same)},
      // Large enough (> 64 K window reads) to run on several threads.
      {"threaded 2x2x2 stride 2",
       Pool3dShape::make(2, {8, 16, 16}, 32, {2, 2, 2}, {2, 2, 2}, valid)},
      {"threaded 3x3x3 stride 1 pad 1 (overlapping)",
       Pool3dShape::make(2, {8, 16, 16}, 8, {3, 3, 3}, {1, 1, 1}, expl, {1, 1, 1})},
  };
}

// Inputs drawn from a few integers, so windows hold ties and the backward's "first maximum"
// rule is exercised, not only the unique-maximum case.
template <typename T>
std::vector<T> tied_vector(int64_t size, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> dist(-3, 3);
  std::vector<T> v(size);
  for (T& e : v)
    e = T(dist(rng));
  return v;
}

template <typename T>
void expect_matches_naive(const Pool3dShape& s, const std::vector<T>& x, std::mt19937_64& rng) {
  const auto dy = random_vector<T>(s.output_size(), rng);
  std::vector<T> y_want(s.output_size()), y = poisoned<T>(s.output_size());
  maxpool3d_fwd_naive(s, x.data(), y_want.data());
  maxpool3d_fwd(s, x.data(), y.data());
  EXPECT_EQ(y, y_want) << "forward";  // max is exact: no rounding to tolerate

  std::vector<T> dx_want(s.input_size()), dx = poisoned<T>(s.input_size());
  maxpool3d_bwd_naive(s, x.data(), y_want.data(), dy.data(), dx_want.data());
  maxpool3d_bwd(s, x.data(), y_want.data(), dy.data(), dx.data());
  // Where windows overlap, a dx element sums several gradients, in another order than the naive.
  EXPECT_LT(max_scaled_diff(dx, dx_want), rounding_tolerance<T>()) << "backward";
}

template <typename T>
void expect_cases_match_naive() {
  std::mt19937_64 rng(200);
  for (const PoolCase& c : cases()) {
    SCOPED_TRACE(c.name);
    expect_matches_naive<T>(c.s, random_vector<T>(c.s.input_size(), rng), rng);
    SCOPED_TRACE("with ties");
    expect_matches_naive<T>(c.s, tied_vector<T>(c.s.input_size(), rng), rng);
  }
}

TEST(MaxPool3dCpu, FloatMatchesNaive) {
  expect_cases_match_naive<float>();
}
TEST(MaxPool3dCpu, DoubleMatchesNaive) {
  expect_cases_match_naive<double>();
}

TEST(MaxPool3dCpu, ShapesOfC3DAndCaffe) {
  const Pool3dShape pool5 =
      Pool3dShape::make(1, {2, 7, 7}, 512, {2, 2, 2}, {2, 2, 2}, Padding::explicit_, {0, 1, 1});
  EXPECT_EQ(pool5.out, (Dims3{1, 4, 4}));
  const Pool3dShape ceil =
      Pool3dShape::make(1, {1, 6, 7}, 1, {1, 3, 3}, {1, 2, 2}, Padding::valid, {0, 0, 0}, true);
  EXPECT_EQ(ceil.out, (Dims3{1, 3, 3}));  // floor mode would give 2x3
}

// The pool + ReLU backward in one pass is the ReLU's backward of the pool's, bit for bit, on
// ReLU outputs: tied ints (windows of zeros among them), random values, and a NaN window.
TEST(MaxPool3dCpu, ReluBackwardIsTheReluOfThePoolBackward) {
  std::mt19937_64 rng(201);
  for (const PoolCase& c : cases()) {
    SCOPED_TRACE(c.name);
    for (bool tied : {true, false}) {
      std::vector<float> x = tied ? tied_vector<float>(c.s.input_size(), rng)
                                  : random_vector<float>(c.s.input_size(), rng);
      for (float& v : x)
        v = std::max(v, 0.f);
      if (!tied) x[x.size() / 2] = std::numeric_limits<float>::quiet_NaN();
      const auto dy = random_vector<float>(c.s.output_size(), rng);
      std::vector<float> y(c.s.output_size()), want(c.s.input_size());
      std::vector<float> got = poisoned<float>(c.s.input_size());
      maxpool3d_fwd(c.s, x.data(), y.data());
      maxpool3d_bwd(c.s, x.data(), y.data(), dy.data(), want.data());
      relu_bwd<float>(int64_t(want.size()), x.data(), want.data(), want.data());
      maxpool3d_relu_bwd(c.s, x.data(), y.data(), dy.data(), got.data());
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * got.size()), 0)
          << (tied ? "tied inputs" : "random inputs with a NaN");
    }
  }
}

// The spec of the tie rule itself: a window of equal values sends its gradient to the first.
TEST(MaxPool3dCpu, TieGoesToFirstInWindowOrder) {
  const Pool3dShape s = Pool3dShape::make(1, {2, 2, 2}, 1, {2, 2, 2}, {2, 2, 2}, Padding::valid);
  const std::vector<double> x = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
  const std::vector<double> y = {0.5}, dy = {1.25};
  std::vector<double> dx(8), dx_naive(8);
  maxpool3d_bwd(s, x.data(), y.data(), dy.data(), dx.data());
  maxpool3d_bwd_naive(s, x.data(), y.data(), dy.data(), dx_naive.data());
  const std::vector<double> want = {1.25, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(dx, want);
  EXPECT_EQ(dx_naive, want);
}

TEST(MaxPool3dCpu, NanPropagatesToTheOutput) {
  const Pool3dShape s = Pool3dShape::make(1, {1, 2, 2}, 2, {1, 2, 2}, {1, 2, 2}, Padding::valid);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1, 2, nan, 3, 4, 5, 0, 1};
  std::vector<float> y(2), y_naive(2);
  maxpool3d_fwd(s, x.data(), y.data());
  maxpool3d_fwd_naive(s, x.data(), y_naive.data());
  EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y_naive[0]));
  EXPECT_EQ(y[1], 5.0f);
  EXPECT_EQ(y_naive[1], 5.0f);
}

TEST(MaxPool3dCpu, WindowEntirelyInPaddingIsAnError) {
  const Pool3dShape s =
      Pool3dShape::make(1, {1, 4, 4}, 1, {1, 2, 2}, {1, 2, 2}, Padding::explicit_, {0, 2, 2});
  std::vector<float> x(16, 1.0f), y(s.output_size());
  try {
    maxpool3d_fwd(s, x.data(), y.data());
    FAIL() << "expected cu3d::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("maxpool3d"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("padding smaller than the window"), std::string::npos)
        << e.what();
  }
}

// The naive backward against central finite differences of the naive forward (double, distinct
// inputs so no perturbation of 1e-6 changes which element wins).
TEST(MaxPool3dCpu, NaiveBackwardMatchesFiniteDifferences) {
  using kernel_testing::norm_relative_error;
  using kernel_testing::numeric_gradient;
  using kernel_testing::weighted_sum;
  const std::vector<Pool3dShape> shapes = {
      Pool3dShape::make(2, {3, 5, 4}, 3, {2, 3, 2}, {1, 2, 2}, Padding::same),
      Pool3dShape::make(1, {2, 7, 7}, 2, {2, 2, 2}, {2, 2, 2}, Padding::explicit_, {0, 1, 1}),
  };
  std::mt19937_64 rng(300);
  for (const Pool3dShape& s : shapes) {
    auto x = random_vector<double>(s.input_size(), rng);
    const auto g = random_vector<double>(s.output_size(), rng);
    std::vector<double> y(s.output_size()), dx(s.input_size());
    const auto loss = [&] {
      maxpool3d_fwd_naive(s, x.data(), y.data());
      return weighted_sum(y, g);
    };
    loss();
    maxpool3d_bwd_naive(s, x.data(), y.data(), g.data(), dx.data());
    EXPECT_LT(norm_relative_error(numeric_gradient(loss, x), dx), 1e-6);
  }
}

}  // namespace
}  // namespace cu3d::cpu
