#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/activation.h"
#include "gradcheck.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

TEST(ActivationOps, ForwardMatchesDefinitions) {
  Generator gen(91);
  const Tensor x = Tensor::uniform({2, 3, 5}, -4, 4, gen);
  const auto v = x.to_vector<float>();
  const auto r = relu(x).to_vector<float>();
  const auto l = leaky_relu(x, 0.3).to_vector<float>();
  const auto s = sigmoid(x).to_vector<float>();
  const auto sm = softmax(x).to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(r[i], std::max(v[i], 0.0f));
    EXPECT_EQ(l[i], v[i] > 0 ? v[i] : 0.3f * v[i]);
    EXPECT_NEAR(s[i], 1 / (1 + std::exp(-double(v[i]))), 1e-6);
  }
  for (size_t row = 0; row < 6; ++row) {  // softmax along the last axis (5)
    double total = 0;
    for (int j = 0; j < 5; ++j)
      total += std::exp(double(v[row * 5 + j]));
    for (int j = 0; j < 5; ++j) {
      EXPECT_NEAR(sm[row * 5 + j], std::exp(double(v[row * 5 + j])) / total, 1e-6);
    }
  }
}

TEST(ActivationOps, Gradients) {
  Generator gen(92);
  expect_gradients_match([](const auto& in) { return relu(in[0]); }, {random_f64({3, 7}, gen)});
  expect_gradients_match([](const auto& in) { return leaky_relu(in[0], 0.2); },
                         {random_f64({2, 3, 5}, gen)});
  expect_gradients_match([](const auto& in) { return sigmoid(in[0]); }, {random_f64({11}, gen)});
  expect_gradients_match([](const auto& in) { return softmax(in[0]); },
                         {random_f64({2, 2, 2, 3, 4}, gen)});
}

TEST(ActivationOps, BadArguments) {
  const Tensor x = Tensor::full({2, 3}, 0.5);
  try {
    leaky_relu(x, -0.1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("leaky_relu: alpha = -0.1"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(relu(Tensor::full({3}, 1.0, DType::i32)), Error);
  EXPECT_THROW(softmax(Tensor()), Error);
}

}  // namespace
}  // namespace cu3d
