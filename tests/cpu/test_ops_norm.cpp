#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cpu/error_testing.h"
#include "engine/ops/norm.h"
#include "gradcheck.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

// Standardizes consecutive groups of `group` elements of v (biased variance), then applies the
// per-channel affine transform: the definition of both layer-norm variants.
std::vector<double> layer_norm_reference(const std::vector<double>& v, int64_t group,
                                         const std::vector<double>& gamma,
                                         const std::vector<double>& beta, double eps) {
  std::vector<double> y(v.size());
  const int64_t c = int64_t(gamma.size());
  for (size_t start = 0; start < v.size(); start += group) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < group; ++i)
      mu += v[start + i] / group;
    for (int64_t i = 0; i < group; ++i)
      var += std::pow(v[start + i] - mu, 2) / group;
    for (int64_t i = 0; i < group; ++i) {
      const int64_t j = (start + i) % c;
      y[start + i] = (v[start + i] - mu) / std::sqrt(var + eps) * gamma[j] + beta[j];
    }
  }
  return y;
}

TEST(NormOps, LayerNormVariantsMatchDefinition) {
  Generator gen(81);
  const Shape shape{2, 3, 4, 5, 6};  // (n, d, h, w, c)
  const Tensor x = Tensor::uniform(shape, -2, 3, gen, DType::f64);
  const Tensor gamma = Tensor::uniform({6}, 0.5, 1.5, gen, DType::f64);
  const Tensor beta = Tensor::uniform({6}, -1, 1, gen, DType::f64);
  const auto vx = x.to_vector<double>();
  const auto vg = gamma.to_vector<double>(), vb = beta.to_vector<double>();
  const auto per_sample =
      layer_norm(x, gamma, beta, 1e-3, LayerNormVariant::per_sample).to_vector<double>();
  const auto per_position =
      layer_norm(x, gamma, beta, 1e-3, LayerNormVariant::per_position).to_vector<double>();
  const auto want_sample = layer_norm_reference(vx, 3 * 4 * 5 * 6, vg, vb, 1e-3);
  const auto want_position = layer_norm_reference(vx, 6, vg, vb, 1e-3);
  for (size_t i = 0; i < vx.size(); ++i) {
    ASSERT_NEAR(per_sample[i], want_sample[i], 1e-12);
    ASSERT_NEAR(per_position[i], want_position[i], 1e-12);
  }
}

TEST(NormOps, LayerNormGradients) {
  Generator gen(82);
  for (LayerNormVariant variant : {LayerNormVariant::per_sample, LayerNormVariant::per_position}) {
    expect_gradients_match(
        [variant](const auto& in) { return layer_norm(in[0], in[1], in[2], 1e-3, variant); },
        {random_f64({2, 3, 2, 2, 4}, gen), Tensor::uniform({4}, 0.5, 1.5, gen, DType::f64),
         random_f64({4}, gen)});
  }
}

TEST(NormOps, BatchNormTrainingUpdatesRunningStatistics) {
  Generator gen(83);
  const Tensor x = Tensor::uniform({4, 3, 5}, -1, 4, gen, DType::f64);  // rows = 12, c = 5
  const Tensor gamma = Tensor::full({5}, 1.0, DType::f64);
  const Tensor beta = Tensor::full({5}, 0.0, DType::f64);
  Tensor rm = Tensor::full({5}, 0.5, DType::f64), rv = Tensor::full({5}, 2.0, DType::f64);
  const auto y = batch_norm(x, gamma, beta, rm, rv, true, 0.1, 0.0).to_vector<double>();
  const auto vx = x.to_vector<double>();
  const auto vrm = rm.to_vector<double>(), vrv = rv.to_vector<double>();
  for (int j = 0; j < 5; ++j) {
    double mu = 0, var = 0, y_mu = 0;
    for (int r = 0; r < 12; ++r)
      mu += vx[r * 5 + j] / 12;
    for (int r = 0; r < 12; ++r)
      var += std::pow(vx[r * 5 + j] - mu, 2) / 12;
    for (int r = 0; r < 12; ++r)
      y_mu += y[r * 5 + j] / 12;
    EXPECT_NEAR(y_mu, 0.0, 1e-12);
    EXPECT_NEAR(vrm[j], 0.9 * 0.5 + 0.1 * mu, 1e-12);
    EXPECT_NEAR(vrv[j], 0.9 * 2.0 + 0.1 * var * 12 / 11, 1e-12);
  }
  // Evaluation reads the running statistics and leaves them alone.
  const auto y_eval = batch_norm(x, gamma, beta, rm, rv, false, 0.1, 0.0).to_vector<double>();
  EXPECT_NEAR(y_eval[7], (vx[7] - vrm[2]) / std::sqrt(vrv[2]), 1e-12);
  EXPECT_EQ(rm.to_vector<double>(), vrm);
}

TEST(NormOps, BatchNormGradients) {
  Generator gen(84);
  const Tensor rm = random_f64({3}, gen), rv = Tensor::uniform({3}, 0.5, 2, gen, DType::f64);
  for (bool training : {true, false}) {
    expect_gradients_match(
        [&](const auto& in) {
          return batch_norm(in[0], in[1], in[2], rm.clone(), rv.clone(), training, 0.1, 1e-3);
        },
        {random_f64({2, 2, 3, 3}, gen), Tensor::uniform({3}, 0.5, 1.5, gen, DType::f64),
         random_f64({3}, gen)});
  }
}

using testing::expect_error;

TEST(NormOps, BadArgumentsNameOpAndShapes) {
  const Tensor x = Tensor::full({2, 3, 4}, 0.5);
  const Tensor g4 = Tensor::full({4}, 1.0), b4 = Tensor::full({4}, 0.25);
  expect_error([&] { layer_norm(x, Tensor::full({3}, 1.0), b4); },
               "layer_norm: gamma must have shape [4], got f32[3] cpu");
  expect_error([&] { layer_norm(Tensor::full({4}, 1.0), g4, b4); }, "at least 2 axes");
  expect_error([&] { layer_norm(x, g4.to(DType::f64), b4); }, "share dtype and device");
  expect_error([&] { batch_norm(x, g4, b4, Tensor(), Tensor(), false); },
               "batch_norm: evaluation of f32[2,3,4] cpu needs running_mean and running_var");
  expect_error(
      [&] {
        batch_norm(Tensor::full({1, 4}, 1.0), g4, b4, Tensor(), Tensor(), true);
      },
      "only 1 value per channel");
  expect_error([&] { batch_norm(x, g4, b4, Tensor::full({3}, 0.0), Tensor::full({3}, 1.0), true); },
               "batch_norm: running_mean must have shape [4]");
  expect_error(
      [&] {
        layer_norm(Tensor::full({2, 4}, 1.0, DType::i32), g4.to(DType::i32), b4.to(DType::i32));
      },
      "layer_norm: got i32[2,4] cpu; on the CPU this op computes in f32 or f64");
}

}  // namespace
}  // namespace cu3d
