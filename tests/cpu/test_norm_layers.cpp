// The LayerNorm and BatchNorm layers: their parameters and buffers, what they normalize over,
// and batch norm's running statistics in training and evaluation.
#include <cmath>

#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/rng.h"
#include "layers/norm.h"

namespace cu3d {
namespace {

// Mean and (biased) variance of the values x[first + i * stride], i < count.
std::pair<double, double> moments(const float* x, int64_t first, int64_t count, int64_t stride) {
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double v = x[first + i * stride];
    sum += v;
    sq += v * v;
  }
  const double mean = sum / double(count);
  return {mean, sq / double(count) - mean * mean};
}

std::vector<std::string> names(const NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, tensor] : tensors)
    out.push_back(name);
  return out;
}

TEST(NormLayers, LayerNormPerSampleNormalizesEachSampleOverAllAxes) {
  Generator gen(11);
  LayerNorm norm(4, LayerNormVariant::per_sample);
  EXPECT_EQ(names(norm.named_parameters()), (std::vector<std::string>{"gamma", "beta"}));
  const Tensor x = Tensor::uniform({2, 3, 5, 5, 4}, -2.0, 7.0, gen);
  const Tensor y = norm(x);
  const int64_t per_sample = 3 * 5 * 5 * 4;
  for (int64_t n = 0; n < 2; ++n) {
    const auto [mean, var] = moments(y.data<float>(), n * per_sample, per_sample, 1);
    EXPECT_NEAR(mean, 0.0, 1e-5) << "sample " << n;
    EXPECT_NEAR(var, 1.0, 1e-3) << "sample " << n;
  }
  // A single position's channels are not normalized by this variant.
  const auto [mean0, var0] = moments(y.data<float>(), 0, 4, 1);
  EXPECT_GT(std::abs(mean0) + std::abs(var0 - 1.0), 1e-2);
}

TEST(NormLayers, LayerNormPerPositionNormalizesChannelsAndTrainsGammaBeta) {
  Generator gen(12);
  LayerNorm norm(6, LayerNormVariant::per_position);
  const Tensor x = Tensor::uniform({2, 3, 6}, -1.0, 3.0, gen);
  const Tensor y = norm(x);
  for (int64_t position = 0; position < 6; ++position) {
    const auto [mean, var] = moments(y.data<float>(), position * 6, 6, 1);
    EXPECT_NEAR(mean, 0.0, 1e-5) << "position " << position;
    EXPECT_NEAR(var, 1.0, 1e-3) << "position " << position;
  }
  autograd::backward(sum(mul(y, Tensor::uniform(y.shape(), -1.0, 1.0, gen))));
  for (const auto& [name, p] : norm.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().shape(), (Shape{6})) << name;
  }
}

TEST(NormLayers, BatchNormTrainsOnBatchStatisticsAndEvaluatesOnRunningOnes) {
  Generator gen(13);
  BatchNorm norm(3, /*momentum=*/0.25, /*eps=*/1e-3);
  EXPECT_EQ(names(norm.named_parameters()), (std::vector<std::string>{"gamma", "beta"}));
  EXPECT_EQ(names(norm.named_buffers()), (std::vector<std::string>{"running_mean", "running_var"}));
  const int64_t rows = 40;
  const Tensor x = Tensor::uniform({rows, 3}, 1.0, 5.0, gen);
  const Tensor y = norm(x);
  const float* px = x.data<float>();
  const float* rm = norm.named_buffers()[0].second.data<float>();
  const float* rv = norm.named_buffers()[1].second.data<float>();
  for (int64_t c = 0; c < 3; ++c) {
    const auto [ymean, yvar] = moments(y.data<float>(), c, rows, 3);
    EXPECT_NEAR(ymean, 0.0, 1e-5) << "channel " << c;
    EXPECT_NEAR(yvar, 1.0, 1e-2) << "channel " << c;
    // running = 0.75 * initial + 0.25 * batch statistic (unbiased variance).
    const auto [xmean, xvar] = moments(px, c, rows, 3);
    EXPECT_NEAR(rm[c], 0.25 * xmean, 1e-5) << "channel " << c;
    EXPECT_NEAR(rv[c], 0.75 + 0.25 * xvar * rows / (rows - 1), 1e-4) << "channel " << c;
  }
  norm.eval();
  const Tensor z = norm(x);
  for (int64_t i = 0; i < rows * 3; i += 7) {
    const int64_t c = i % 3;
    EXPECT_NEAR(z.data<float>()[i], (px[i] - rm[c]) / std::sqrt(rv[c] + 1e-3), 1e-4)
        << "element " << i;
  }
}

TEST(NormLayers, RejectsNonsenseSettings) {
  EXPECT_THROW(LayerNorm(0, LayerNormVariant::per_sample), Error);
  EXPECT_THROW(BatchNorm(4, /*momentum=*/1.5), Error);
}

}  // namespace
}  // namespace cu3d
