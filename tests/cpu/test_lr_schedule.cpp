#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "engine/optim/lr_schedule.h"
#include "kernels/error.h"

namespace cu3d {
namespace {

TEST(LrSchedule, ConstantAndWarmup) {
  const LrSchedule s = LrSchedule::constant(0.1, 4);
  EXPECT_DOUBLE_EQ(s.at(0), 0.025);
  EXPECT_DOUBLE_EQ(s.at(2), 0.075);
  EXPECT_DOUBLE_EQ(s.at(3), 0.1);
  EXPECT_DOUBLE_EQ(s.at(1000), 0.1);
  EXPECT_DOUBLE_EQ(LrSchedule::constant(0.3).at(0), 0.3);
}

TEST(LrSchedule, StepDecay) {
  const LrSchedule s = LrSchedule::step(0.1, 30, 0.1);
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(29), 0.1);
  EXPECT_NEAR(s.at(30), 0.01, 1e-15);
  EXPECT_NEAR(s.at(65), 0.001, 1e-15);
  const LrSchedule warm = LrSchedule::step(0.1, 10, 0.5, 5);
  EXPECT_DOUBLE_EQ(warm.at(4), 0.1);
  EXPECT_DOUBLE_EQ(warm.at(14), 0.1);
  EXPECT_DOUBLE_EQ(warm.at(15), 0.05);
}

TEST(LrSchedule, CosineWithWarmup) {
  const LrSchedule s = LrSchedule::cosine(1.0, 110, 0.1, 10);
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // half way: the mean of lr and min_lr
  EXPECT_NEAR(s.at(35), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi / 4)), 1e-12);
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);
  for (int t = 11; t < 110; ++t)
    EXPECT_LT(s.at(t), s.at(t - 1)) << t;
  EXPECT_EQ(s.str(), "cosine(lr=1, total=110, min_lr=0.1, warmup=10)");
}

TEST(LrSchedule, BadArguments) {
  EXPECT_THROW(LrSchedule::cosine(0.1, 10, 0, 10), Error);
  EXPECT_THROW(LrSchedule::step(0.1, 0, 0.5), Error);
  EXPECT_THROW(LrSchedule::constant(-1), Error);
  EXPECT_THROW(LrSchedule::constant(0.1).at(-1), Error);
}

}  // namespace
}  // namespace cu3d
