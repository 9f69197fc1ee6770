#include <gtest/gtest.h>

#include <vector>

#include "engine/ops/dropout.h"
#include "gradcheck.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

TEST(DropoutOps, TrainingMasksAndScalesEvalIsIdentity) {
  Generator gen(111);
  const Tensor x = Tensor::uniform({4, 5, 6}, 0.5, 1.5, gen);
  const auto v = x.to_vector<float>();
  const auto y = dropout(x, 0.25, true, 42, 7).to_vector<float>();
  int dropped = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (y[i] == 0) {
      ++dropped;
    } else {
      EXPECT_FLOAT_EQ(y[i], v[i] / 0.75f);
    }
  }
  EXPECT_GT(dropped, 10);  // 120 elements at p = 0.25: 30 expected
  EXPECT_LT(dropped, 55);
  EXPECT_EQ(dropout(x, 0.25, true, 42, 7).to_vector<float>(), y);
  EXPECT_NE(dropout(x, 0.25, true, 42, 8).to_vector<float>(), y);
  EXPECT_TRUE(dropout(x, 0.25, false, 42, 7).shares_storage_with(x));
}

TEST(DropoutOps, GradientRecomputesTheMask) {
  Generator gen(112);
  expect_gradients_match([](const auto& in) { return dropout(in[0], 0.4, true, 9, 3); },
                         {random_f64({3, 5, 7}, gen)});
}

TEST(DropoutOps, BadRate) {
  EXPECT_THROW(dropout(Tensor::full({3}, 1.0), 1.0, true, 1, 0), Error);
  EXPECT_THROW(dropout(Tensor::full({3}, 1.0), -0.5, false, 1, 0), Error);
}

}  // namespace
}  // namespace cu3d
