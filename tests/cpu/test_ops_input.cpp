// engine/ops/input: normalize_clips (uint8 clips -> f32 model input) on the CPU, checked
// element by element against the recipe's formula; the CUDA path is the same kernel pair that
// tests/gpu/parity_ops.cpp compares.
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/error_testing.h"
#include "cpu/random_clips.h"
#include "engine/ops/input.h"
#include "kernels/error.h"

namespace cu3d {
namespace {

using testing::random_clips;

// (pixel - mean[c]) * scale in float, channels last: the definition the op must reproduce bit
// for bit (the feeder's host normalization before the op existed).
std::vector<float> reference(const Tensor& clips, const std::vector<float>& mean, float scale) {
  const std::vector<uint8_t> x = clips.to_vector<uint8_t>();
  const size_t c = size_t(clips.size(4));
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = (float(x[i]) - (mean.empty() ? 0.0f : mean[i % c])) * scale;
  return y;
}

using testing::expect_error;

TEST(InputOps, NormalizeSubtractsTheChannelMeanAndScalesExactly) {
  // Odd sizes, so no row is a multiple of a vector width.
  const Tensor clips = random_clips({2, 3, 5, 7, 3}, 17);
  const std::vector<float> mean{10.5f, 120.0f, 250.25f};
  const float scale = 1.0f / 255;
  const Tensor y = normalize_clips(clips, mean, scale);
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(y.device(), Device::cpu());
  EXPECT_EQ(y.shape(), clips.shape());
  EXPECT_EQ(y.to_vector<float>(), reference(clips, mean, scale));
}

TEST(InputOps, NormalizeWithoutAMeanOnlyScales) {
  const Tensor clips = random_clips({1, 4, 6, 6, 1}, 5);
  const Tensor y = normalize_clips(clips, {}, 2.5f);
  EXPECT_EQ(y.to_vector<float>(), reference(clips, {}, 2.5f));
  EXPECT_EQ(y.to_vector<float>()[0], float(clips.to_vector<uint8_t>()[0]) * 2.5f);
}

TEST(InputOps, NormalizeOfAnEmptyBatchIsEmpty) {
  const Tensor y = normalize_clips(Tensor::empty({0, 2, 3, 3, 3}, DType::u8), {1, 2, 3}, 1);
  EXPECT_EQ(y.shape(), (Shape{0, 2, 3, 3, 3}));
}

TEST(InputOps, NormalizeRejectsOtherShapesDtypesAndMeans) {
  const Tensor clips = random_clips({1, 2, 3, 3, 3}, 1);
  expect_error([&] { normalize_clips(clips.to(DType::f32), {}, 1); },
               "normalize_clips: clips must be u8 pixels, got f32[1,2,3,3,3] cpu");
  expect_error(
      [&] {
        normalize_clips(random_clips({2, 3, 3, 3}, 1), {}, 1);
      },
      "normalize_clips: clips (N, D, H, W, C) must have 5 axes, got u8[2,3,3,3] cpu");
  expect_error([&] { normalize_clips(Tensor(), {}, 1); }, "undefined tensor");
  expect_error(
      [&] {
        normalize_clips(clips, {1, 2}, 1);
      },
      "mean has 2 values but clips u8[1,2,3,3,3] cpu have 3 channels");
}

}  // namespace
}  // namespace cu3d
