#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/cpu/input_transform.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

// A frame whose every byte encodes its own coordinates, so a wrong crop, flip or channel
// shows as a wrong value.
uint8_t code(int n, int t, int row, int col, int ch) {
  return uint8_t(n * 97 + t * 31 + row * 13 + col * 7 + ch * 3);
}

TEST(InputTransform, CropsFlipsAndNormalizesEveryElement) {
  const InputTransformShape s{3, 2, 9, 11, 3, 5, 6};
  std::vector<uint8_t> x(s.input_size());
  int64_t i = 0;
  for (int n = 0; n < s.n; ++n)
    for (int t = 0; t < s.d; ++t)
      for (int r = 0; r < s.h; ++r)
        for (int col = 0; col < s.w; ++col)
          for (int ch = 0; ch < s.c; ++ch)
            x[i++] = code(n, t, r, col, ch);
  const std::vector<int32_t> crops = {0, 0, 4, 5, 2, 3};  // corner, far corner, inside
  const std::vector<uint8_t> flips = {1, 0, 1};
  const std::vector<double> mean = {100.5, 20.25, 3.0};
  const double scale = 1.0 / 58;
  std::vector<double> y(s.output_size(), -1e300);
  input_transform<double>(s, x.data(), crops.data(), flips.data(), mean.data(), scale, y.data());
  i = 0;
  for (int n = 0; n < s.n; ++n)
    for (int t = 0; t < s.d; ++t)
      for (int r = 0; r < s.out_h; ++r)
        for (int j = 0; j < s.out_w; ++j)
          for (int ch = 0; ch < s.c; ++ch, ++i) {
            const int col = crops[2 * n + 1] + (flips[n] ? s.out_w - 1 - j : j);
            const double want = (code(n, t, crops[2 * n] + r, col, ch) - mean[ch]) * scale;
            ASSERT_DOUBLE_EQ(y[i], want) << "n " << n << " t " << t << " r " << r << " j " << j;
          }
}

TEST(InputTransform, NullMeanOnlyScales) {
  const InputTransformShape s{1, 1, 2, 2, 1, 2, 2};
  const std::vector<uint8_t> x = {0, 1, 254, 255};
  const std::vector<int32_t> crops = {0, 0};
  const std::vector<uint8_t> flips = {0};
  std::vector<float> y(4);
  input_transform<float>(s, x.data(), crops.data(), flips.data(), nullptr, 2.f, y.data());
  EXPECT_EQ(y, (std::vector<float>{0.f, 2.f, 508.f, 510.f}));
}

TEST(InputTransform, RejectsCropsOutsideTheFrames) {
  const InputTransformShape s{2, 1, 4, 4, 1, 3, 3};
  const std::vector<uint8_t> x(s.input_size(), 7), flips = {0, 0};
  std::vector<float> y(s.output_size());
  for (const std::vector<int32_t>& crops :
       {std::vector<int32_t>{0, 0, 2, 0}, {0, 0, 0, -1}, {1, 1, 1, 2}}) {
    EXPECT_THROW(
        input_transform<float>(s, x.data(), crops.data(), flips.data(), nullptr, 1.f, y.data()),
        Error);
  }
  InputTransformShape too_big = s;
  too_big.out_w = 5;
  const std::vector<int32_t> zeros = {0, 0, 0, 0};
  EXPECT_THROW(
      input_transform<float>(too_big, x.data(), zeros.data(), flips.data(), nullptr, 1.f, y.data()),
      Error);
}

}  // namespace
}  // namespace cu3d::cpu
