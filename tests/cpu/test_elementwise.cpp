#include <gtest/gtest.h>

#include "engine/ops/elementwise.h"
#include "gradcheck.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

TEST(Elementwise, ForwardMatchesLoop) {
  Generator gen(1);
  const Tensor a = Tensor::uniform({3, 5, 7}, -2, 2, gen);
  const Tensor b = Tensor::uniform({3, 5, 7}, -2, 2, gen);
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  const auto sum_ab = add(a, b).to_vector<float>();
  const auto prod = mul(a, b).to_vector<float>();
  const auto scaled = scale(a, -1.5).to_vector<float>();
  double total = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    EXPECT_EQ(sum_ab[i], va[i] + vb[i]);
    EXPECT_EQ(prod[i], va[i] * vb[i]);
    EXPECT_EQ(scaled[i], -1.5f * va[i]);
    total += va[i];
  }
  EXPECT_NEAR(sum(a).item(), total, 1e-4);
  EXPECT_NEAR(mean(a).item(), total / va.size(), 1e-6);
}

TEST(Elementwise, Gradients) {
  Generator gen(2);
  expect_gradients_match([](const auto& in) { return add(in[0], in[1]); },
                         {random_f64({4, 3}, gen), random_f64({4, 3}, gen)});
  expect_gradients_match([](const auto& in) { return mul(in[0], in[1]); },
                         {random_f64({2, 3, 5}, gen), random_f64({2, 3, 5}, gen)});
  expect_gradients_match([](const auto& in) { return scale(in[0], 0.7); }, {random_f64({7}, gen)});
  expect_gradients_match([](const auto& in) { return mean(mul(in[0], in[0])); },
                         {random_f64({3, 4}, gen)});
}

TEST(Elementwise, ShapeMismatchNamesOpAndShapes) {
  const Tensor a = Tensor::zeros({2, 3});
  const Tensor b = Tensor::zeros({3, 2});
  try {
    add(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: shapes differ, f32[2,3] cpu and f32[3,2] cpu"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(add(a, Tensor::zeros({2, 3}, DType::f64)), Error);
  EXPECT_THROW(add(Tensor::zeros({2, 3}, DType::i32), Tensor::zeros({2, 3}, DType::i32)), Error);
}

}  // namespace
}  // namespace cu3d
