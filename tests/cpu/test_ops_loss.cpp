#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/loss.h"
#include "gradcheck.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

TEST(LossOps, SoftmaxCrossEntropyMatchesDefinition) {
  Generator gen(101);
  const Tensor logits = Tensor::uniform({4, 3}, -3, 3, gen, DType::f64);
  const Tensor labels = Tensor::from_vector<int32_t>({2, 0, 1, 2}, {4});
  const Tensor loss = softmax_cross_entropy(logits, labels);
  EXPECT_EQ(loss.shape(), Shape{});
  const auto z = logits.to_vector<double>();
  const int label[] = {2, 0, 1, 2};
  double want = 0;
  for (int r = 0; r < 4; ++r) {
    double total = 0;
    for (int j = 0; j < 3; ++j)
      total += std::exp(z[r * 3 + j]);
    want -= std::log(std::exp(z[r * 3 + label[r]]) / total) / 4;
  }
  EXPECT_NEAR(loss.item(), want, 1e-12);
}

TEST(LossOps, SoftmaxCrossEntropyGradient) {
  Generator gen(102);
  const Tensor labels = Tensor::from_vector<int32_t>({4, 0, 3, 3, 1}, {5});
  expect_gradients_match([&](const auto& in) { return softmax_cross_entropy(in[0], labels); },
                         {random_f64({5, 6}, gen)});
}

TEST(LossOps, LargeLogitsInFloat) {
  const Tensor logits = Tensor::from_vector<float>({3e4f, -3e4f, 0.0f, 5e3f}, {2, 2});
  const Tensor labels = Tensor::from_vector<int32_t>({1, 0}, {2});
  EXPECT_NEAR(softmax_cross_entropy(logits, labels).item(), (6e4 + 5e3) / 2, 1e-2);
}

TEST(LossOps, BadLabelsAreNamed) {
  const Tensor logits = Tensor::full({3, 4}, 0.5);
  const auto message = [&](const Tensor& labels) {
    try {
      softmax_cross_entropy(logits, labels);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(Tensor::from_vector<int32_t>({0, 7, 1}, {3})).find("label 7 in row 1"),
            std::string::npos);
  EXPECT_NE(message(Tensor::from_vector<int32_t>({0, 1}, {2})).find("labels must be i32[3]"),
            std::string::npos);
  EXPECT_NE(message(Tensor::from_vector<int64_t>({0, 1, 2}, {3})).find("got i64[3] cpu"),
            std::string::npos);
  EXPECT_THROW(
      softmax_cross_entropy(Tensor::full({3}, 0.5), Tensor::from_vector<int32_t>({0, 1, 2}, {3})),
      Error);
}

}  // namespace
}  // namespace cu3d
