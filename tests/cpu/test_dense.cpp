#include "kernels/cpu/dense.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/kernel_testing.h"

namespace cu3d::cpu {
namespace {

using kernel_testing::max_scaled_diff;
using kernel_testing::poisoned;
using kernel_testing::random_vector;
using kernel_testing::rounding_tolerance;

struct DenseShape {
  int64_t m, in, out;
};

const std::vector<DenseShape> kShapes = {
    {1, 1, 1}, {7, 13, 5}, {32, 100, 17}, {3, 257, 129}, {65, 8, 101}};

// A requested gradient matches the reference; one not requested keeps its poison.
template <typename T>
void expect_written_or_untouched(bool requested, const std::vector<T>& got,
                                 const std::vector<T>& want, double tol, const char* name) {
  if (requested) {
    EXPECT_LT(max_scaled_diff(got, want), tol) << name;
    return;
  }
  for (T v : got)
    ASSERT_TRUE(std::isnan(v)) << name << " was written though not requested";
}

template <typename T>
void expect_matches_naive(const DenseShape& d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto x = random_vector<T>(d.m * d.in, rng);
  const auto w = random_vector<T>(d.out * d.in, rng);
  const auto b = random_vector<T>(d.out, rng);
  const auto dy = random_vector<T>(d.m * d.out, rng);
  const double tol = rounding_tolerance<T>();

  for (const T* bias : {b.data(), static_cast<const T*>(nullptr)}) {
    std::vector<T> want(d.m * d.out), got = poisoned<T>(d.m * d.out);
    dense_fwd_naive(d.m, d.in, d.out, x.data(), w.data(), bias, want.data());
    dense_fwd(d.m, d.in, d.out, x.data(), w.data(), bias, got.data());
    EXPECT_LT(max_scaled_diff(got, want), tol) << (bias ? "forward with bias" : "forward");
  }

  std::vector<T> dx_want(d.m * d.in), dw_want(d.out * d.in), db_want(d.out);
  dense_bwd_naive(d.m, d.in, d.out, x.data(), w.data(), dy.data(), dx_want.data(), dw_want.data(),
                  db_want.data());
  // Every subset of the three gradients: those asked for are written, the others untouched.
  for (int mask = 0; mask < 8; ++mask) {
    auto dx = poisoned<T>(d.m * d.in), dw = poisoned<T>(d.out * d.in), db = poisoned<T>(d.out);
    dense_bwd(d.m, d.in, d.out, x.data(), w.data(), dy.data(), mask & 1 ? dx.data() : nullptr,
              mask & 2 ? dw.data() : nullptr, mask & 4 ? db.data() : nullptr);
    expect_written_or_untouched(mask & 1, dx, dx_want, tol, "dx");
    expect_written_or_untouched(mask & 2, dw, dw_want, tol, "dw");
    expect_written_or_untouched(mask & 4, db, db_want, tol, "db");
  }
}

TEST(DenseCpu, FloatMatchesNaive) {
  uint64_t seed = 400;
  for (const DenseShape& d : kShapes) {
    SCOPED_TRACE(testing::Message() << d.m << "x" << d.in << " -> " << d.out);
    expect_matches_naive<float>(d, ++seed);
  }
}

TEST(DenseCpu, DoubleMatchesNaive) {
  uint64_t seed = 500;
  for (const DenseShape& d : kShapes) {
    SCOPED_TRACE(testing::Message() << d.m << "x" << d.in << " -> " << d.out);
    expect_matches_naive<double>(d, ++seed);
  }
}

TEST(DenseCpu, NaiveBackwardMatchesFiniteDifferences) {
  using kernel_testing::norm_relative_error;
  using kernel_testing::numeric_gradient;
  using kernel_testing::weighted_sum;
  const DenseShape d = {4, 6, 3};
  std::mt19937_64 rng(600);
  auto x = random_vector<double>(d.m * d.in, rng);
  auto w = random_vector<double>(d.out * d.in, rng);
  auto b = random_vector<double>(d.out, rng);
  const auto g = random_vector<double>(d.m * d.out, rng);
  std::vector<double> y(d.m * d.out);
  const auto loss = [&] {
    dense_fwd_naive(d.m, d.in, d.out, x.data(), w.data(), b.data(), y.data());
    return weighted_sum(y, g);
  };
  std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
  dense_bwd_naive(d.m, d.in, d.out, x.data(), w.data(), g.data(), dx.data(), dw.data(), db.data());
  EXPECT_LT(norm_relative_error(numeric_gradient(loss, x), dx), 1e-6) << "dx";
  EXPECT_LT(norm_relative_error(numeric_gradient(loss, w), dw), 1e-6) << "dw";
  EXPECT_LT(norm_relative_error(numeric_gradient(loss, b), db), 1e-6) << "db";
}

}  // namespace
}  // namespace cu3d::cpu
