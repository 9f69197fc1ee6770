#include "kernels/cpu/conv3d.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <string>
#include <vector>

#include "cpu/kernel_testing.h"

namespace cu3d::cpu {
namespace {

using kernel_testing::max_scaled_diff;
using kernel_testing::poisoned;
using kernel_testing::random_vector;
using kernel_testing::rounding_tolerance;

struct ConvCase {
  std::string name;
  Conv3dShape s;
};

// A shape with arbitrary (asymmetric) padding, which Conv3dShape::make only produces for "same".
Conv3dShape with_padding(int n, Dims3 in, int c, int k, Dims3 kernel, Dims3 stride, Dims3 before,
                         Dims3 after) {
  Conv3dShape s = Conv3dShape::make(n, in, c, k, kernel, stride, Padding::valid);
  s.pad_before = before, s.pad_after = after;
  s.out = {window_output_size(in.d, kernel.d, stride.d, before.d, after.d),
           window_output_size(in.h, kernel.h, stride.h, before.h, after.h),
           window_output_size(in.w, kernel.w, stride.w, before.w, after.w)};
  return s;
}

std::vector<ConvCase> small_cases() {
  const Padding same = Padding::same, valid = Padding::valid, expl = Padding::explicit_;
  return {
      {"3x3x3 same", Conv3dShape::make(2, {4, 6, 5}, 5, 7, {3, 3, 3}, {1, 1, 1}, same)},
      {"3x3x3 stride 2 same (asymmetric)",
       Conv3dShape::make(2, {5, 7, 6}, 3, 4, {3, 3, 3}, {2, 2, 2}, same)},
      {"1x1x1 valid", Conv3dShape::make(3, {3, 4, 5}, 6, 5, {1, 1, 1}, {1, 1, 1}, valid)},
      {"2x2x2 stride 2 valid", Conv3dShape::make(1, {5, 6, 7}, 4, 3, {2, 2, 2}, {2, 2, 2}, valid)},
      {"5x5x5 same c=3", Conv3dShape::make(1, {6, 7, 8}, 3, 4, {5, 5, 5}, {1, 1, 1}, same)},
      {"conv2d 3x3 same", Conv3dShape::make(2, {1, 9, 8}, 4, 6, {1, 3, 3}, {1, 1, 1}, same)},
      {"conv2d 5x5 stride 2 same c=3",
       Conv3dShape::make(1, {1, 11, 10}, 3, 5, {1, 5, 5}, {1, 2, 2}, same)},
      {"3x1x5 stride 1,2,3 pad 1",
       Conv3dShape::make(2, {4, 5, 11}, 3, 2, {3, 1, 5}, {1, 2, 3}, expl, {1, 1, 1})},
      {"1x1x1 stride 2 (stride > kernel)",
       Conv3dShape::make(1, {5, 5, 6}, 3, 2, {1, 1, 1}, {2, 2, 2}, valid)},
      {"2x3x3 stride 1,1,2 asymmetric explicit",
       with_padding(2, {4, 5, 6}, 3, 4, {2, 3, 3}, {1, 1, 2}, {0, 2, 1}, {1, 0, 2})},
      {"3x3x3 same on 2x2x2 (all outputs see padding)",
       Conv3dShape::make(1, {2, 2, 2}, 2, 3, {3, 3, 3}, {1, 1, 1}, same)},
  };
}

// Shapes large enough that every pass runs on several threads (> 8 MFLOP) and splits into
// several tiles per thread (in float a conv2a-like tile holds ~150 rows; here 384 rows, and
// the stride-2 bwd-data has 8 phases of 216 rows).
std::vector<ConvCase> tiled_cases() {
  return {
      {"conv2a-like c=64",
       Conv3dShape::make(2, {3, 8, 8}, 64, 32, {3, 3, 3}, {1, 1, 1}, Padding::same)},
      {"stride 2 c=32",
       Conv3dShape::make(2, {6, 12, 12}, 32, 32, {3, 3, 3}, {2, 2, 2}, Padding::same)},
      // Few input channels (c <= 4): keras3d's gray conv1a (float: the shifted micro-kernels
      // with tap rows of depth 3; double: the direct loops over several 512-row tiles, the last
      // one partial) and an RGB stride-2 layer (direct in both).
      {"c=1 keras3d conv1a-like",
       Conv3dShape::make(4, {5, 15, 17}, 1, 32, {3, 3, 3}, {1, 1, 1}, Padding::same)},
      {"direct c=3 stride 2",
       Conv3dShape::make(3, {6, 22, 20}, 3, 16, {3, 3, 3}, {2, 2, 2}, Padding::same)},
      // The shifted-view path (stride 1, c >= 16) for the forward and bwd-data: odd channel
      // counts, k not a multiple of 16, asymmetric and valid padding, and a plane split into two
      // bands, the second one partial (row pitch 72 x 80 filters: 22 lines per 512 KiB band).
      {"shifted c=17 k=20 asymmetric",
       with_padding(2, {4, 7, 9}, 17, 20, {3, 3, 2}, {1, 1, 1}, {2, 0, 1}, {0, 2, 0})},
      {"shifted c=16 valid 2x3x3",
       Conv3dShape::make(3, {5, 6, 7}, 16, 24, {2, 3, 3}, {1, 1, 1}, Padding::valid)},
      {"shifted two bands",
       Conv3dShape::make(1, {1, 30, 70}, 16, 80, {1, 3, 3}, {1, 1, 1}, Padding::same)},
      // The forward's blocks of 14 rows within output lines: 70 above is 5 whole blocks; 13 here
      // is one block whose last row runs into the padding (row pitch 15, the next line's
      // start beyond it).
      {"shifted line blocks of 14, partial",
       Conv3dShape::make(2, {3, 4, 13}, 16, 20, {3, 3, 3}, {1, 1, 1}, Padding::same)},
      // Unpadded lines of 13 (pitch 13): the block's 14th row is the next line's first position,
      // computed twice (the same sums in the same order) and, on the last line, dropped.
      {"shifted line blocks of 14, across lines",
       Conv3dShape::make(2, {2, 3, 13}, 16, 20, {1, 1, 1}, {1, 1, 1}, Padding::valid)},
      // bwd-filter's channel blocks: c = 44 is 12,12,12,8 and c = 18 is 8,8 and a partial 2;
      // k = 48 ends each block's columns with a single vector.
      {"shifted c=44 k=48",
       Conv3dShape::make(2, {3, 5, 6}, 44, 48, {3, 3, 3}, {1, 1, 1}, Padding::same)},
      {"shifted c=18 k=16",
       Conv3dShape::make(2, {3, 7, 5}, 18, 16, {3, 3, 3}, {1, 1, 1}, Padding::same)},
  };
}

template <typename T>
void expect_matches_naive(const Conv3dShape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto x = random_vector<T>(s.input_size(), rng);
  const auto w = random_vector<T>(s.filter_size(), rng);
  const auto b = random_vector<T>(s.k, rng);
  const auto dy = random_vector<T>(s.output_size(), rng);
  const double tol = rounding_tolerance<T>();

  std::vector<T> want(s.output_size()), got = poisoned<T>(s.output_size());
  conv3d_fwd_naive(s, x.data(), w.data(), b.data(), want.data());
  conv3d_fwd(s, x.data(), w.data(), b.data(), got.data());
  EXPECT_LT(max_scaled_diff(got, want), tol) << "forward with bias";
  conv3d_fwd_naive<T>(s, x.data(), w.data(), nullptr, want.data());
  got = poisoned<T>(s.output_size());
  conv3d_fwd<T>(s, x.data(), w.data(), nullptr, got.data());
  EXPECT_LT(max_scaled_diff(got, want), tol) << "forward without bias";

  std::vector<T> dx_want(s.input_size()), dx = poisoned<T>(s.input_size());
  conv3d_bwd_data_naive(s, dy.data(), w.data(), dx_want.data());
  conv3d_bwd_data(s, dy.data(), w.data(), dx.data());
  EXPECT_LT(max_scaled_diff(dx, dx_want), tol) << "bwd-data";

  std::vector<T> dw_want(s.filter_size()), db_want(s.k);
  std::vector<T> dw = poisoned<T>(s.filter_size()), db = poisoned<T>(s.k);
  conv3d_bwd_filter_naive(s, x.data(), dy.data(), dw_want.data(), db_want.data());
  conv3d_bwd_filter(s, x.data(), dy.data(), dw.data(), db.data());
  EXPECT_LT(max_scaled_diff(dw, dw_want), tol) << "bwd-filter dw";
  EXPECT_LT(max_scaled_diff(db, db_want), tol) << "bwd-filter dbias";
  dw = poisoned<T>(s.filter_size());
  conv3d_bwd_filter<T>(s, x.data(), dy.data(), dw.data(), nullptr);
  EXPECT_LT(max_scaled_diff(dw, dw_want), tol) << "bwd-filter without dbias";
}

template <typename T>
void expect_cases_match_naive(const std::vector<ConvCase>& cases) {
  uint64_t seed = 100;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(c.name);
    expect_matches_naive<T>(c.s, ++seed);
  }
}

// At stride 1, bwd-data is the forward conv bwd_data_as_forward(s) of dy with the filters of
// conv3d_flip_transpose_filters: the identity CUDA version 3 runs bwd-data on. Both sides naive
// loops in double, so only the mapping is under test; the strided cases must be refused.
TEST(Conv3dCpu, BwdDataIsTheForwardOfTheMirroredShape) {
  int checked = 0;
  std::mt19937_64 rng(41);
  for (const auto& cases : {small_cases(), tiled_cases()})
    for (const ConvCase& c : cases) {
      SCOPED_TRACE(c.name);
      const Conv3dShape& s = c.s;
      if (!bwd_data_is_forward(s)) {
        EXPECT_FALSE(s.stride == (Dims3{1, 1, 1}) && s.pad_before.d < s.kernel.d &&
                     s.pad_after.d < s.kernel.d && s.pad_before.h < s.kernel.h &&
                     s.pad_after.h < s.kernel.h && s.pad_before.w < s.kernel.w &&
                     s.pad_after.w < s.kernel.w);
        continue;
      }
      const Conv3dShape t = bwd_data_as_forward(s);
      ASSERT_EQ(t.out, s.in);
      ASSERT_EQ(t.in, s.out);
      const auto dy = random_vector<double>(s.output_size(), rng);
      const auto w = random_vector<double>(s.filter_size(), rng);
      std::vector<double> wt = poisoned<double>(s.filter_size());
      conv3d_flip_transpose_filters(s, w.data(), wt.data());
      std::vector<double> want(s.input_size()), got = poisoned<double>(s.input_size());
      conv3d_bwd_data_naive(s, dy.data(), w.data(), want.data());
      conv3d_fwd_naive<double>(t, dy.data(), wt.data(), nullptr, got.data());
      EXPECT_LT(max_scaled_diff(got, want), 1e-12);
      ++checked;
    }
  EXPECT_GE(checked, 12);  // the stride-1 cases, asymmetric padding included
}

TEST(Conv3dCpu, FloatMatchesNaive) {
  expect_cases_match_naive<float>(small_cases());
}
TEST(Conv3dCpu, DoubleMatchesNaive) {
  expect_cases_match_naive<double>(small_cases());
}
TEST(Conv3dCpu, TiledFloatMatchesNaive) {
  expect_cases_match_naive<float>(tiled_cases());
}
TEST(Conv3dCpu, TiledDoubleMatchesNaive) {
  expect_cases_match_naive<double>(tiled_cases());
}

// Tiles split unevenly over an odd number of threads, and bwd-filter sums three partials.
TEST(Conv3dCpu, ThreeThreadsMatchNaive) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(3);
  expect_cases_match_naive<float>(tiled_cases());
  omp_set_num_threads(saved);
}

// The same call twice gives bit-identical results (bwd-filter reduces in a fixed order).
TEST(Conv3dCpu, Deterministic) {
  const Conv3dShape s = tiled_cases()[0].s;
  std::mt19937_64 rng(7);
  const auto x = random_vector<float>(s.input_size(), rng);
  const auto dy = random_vector<float>(s.output_size(), rng);
  std::vector<float> dw1(s.filter_size()), dw2(s.filter_size()), db1(s.k), db2(s.k);
  conv3d_bwd_filter(s, x.data(), dy.data(), dw1.data(), db1.data());
  conv3d_bwd_filter(s, x.data(), dy.data(), dw2.data(), db2.data());
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(db1, db2);
}

// The naive backward passes are the spec of the fast ones, so they are checked against central
// finite differences of the naive forward, of L = sum(y * g), in double.
void expect_naive_backward_matches_finite_differences(const Conv3dShape& s, uint64_t seed) {
  using kernel_testing::norm_relative_error;
  using kernel_testing::numeric_gradient;
  using kernel_testing::weighted_sum;
  std::mt19937_64 rng(seed);
  auto x = random_vector<double>(s.input_size(), rng);
  auto w = random_vector<double>(s.filter_size(), rng);
  auto b = random_vector<double>(s.k, rng);
  const auto g = random_vector<double>(s.output_size(), rng);
  std::vector<double> y(s.output_size());
  const auto loss = [&] {
    conv3d_fwd_naive(s, x.data(), w.data(), b.data(), y.data());
    return weighted_sum(y, g);
  };
  std::vector<double> dx(s.input_size()), dw(s.filter_size()), db(s.k);
  conv3d_bwd_data_naive(s, g.data(), w.data(), dx.data());
  conv3d_bwd_filter_naive(s, x.data(), g.data(), dw.data(), db.data());
  EXPECT_LT(norm_relative_error(numeric_gradient(loss, x), dx), 1e-6) << "dx";
  EXPECT_LT(norm_relative_error(numeric_gradient(loss, w), dw), 1e-6) << "dw";
  EXPECT_LT(norm_relative_error(numeric_gradient(loss, b), db), 1e-6) << "dbias";
}

TEST(Conv3dCpu, NaiveBackwardMatchesFiniteDifferences) {
  SCOPED_TRACE("3x2x3 stride 1,2,1 same");
  expect_naive_backward_matches_finite_differences(
      Conv3dShape::make(1, {3, 4, 3}, 2, 3, {3, 2, 3}, {1, 2, 1}, Padding::same), 11);
  SCOPED_TRACE("2x2x2 stride 2 asymmetric");
  expect_naive_backward_matches_finite_differences(
      with_padding(2, {3, 4, 5}, 2, 2, {2, 2, 2}, {2, 2, 2}, {1, 0, 1}, {0, 1, 1}), 12);
}

}  // namespace
}  // namespace cu3d::cpu
