#include <cstdlib>

#include <gtest/gtest.h>

#include "data/video.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

using testing::TempDir;

// MJPG on flat areas, sampled away from the quadrant edges: a few levels of error at most.
constexpr int kCodecTolerance = 8;

void expect_near_colour(const uint8_t* pixel, int a, int b, int c, const std::string& where) {
  EXPECT_NEAR(pixel[0], a, kCodecTolerance) << where;
  EXPECT_NEAR(pixel[1], b, kCodecTolerance) << where;
  EXPECT_NEAR(pixel[2], c, kCodecTolerance) << where;
}

TEST(DataVideo, DecodesFrameCountSizeAndPixelsInRgbOrder) {
  TempDir dir;
  const auto path = dir.path() / "quadrants.avi";
  testing::write_quadrant_video(path, 7, 48, 64);
  const Clip clip = decode_video(path, {});
  ASSERT_EQ(clip.frames, 7);
  ASSERT_EQ(clip.height, 48);
  ASSERT_EQ(clip.width, 64);
  ASSERT_EQ(clip.channels, 3);
  ASSERT_EQ(clip.pixels.size(), size_t(7) * 48 * 64 * 3);
  for (int t = 0; t < clip.frames; ++t) {
    for (int q = 0; q < 4; ++q) {
      const int y = q / 2 == 0 ? 12 : 36, x = q % 2 == 0 ? 16 : 48;
      const cv::Vec3b bgr = testing::quadrant_colour(q, t);
      const uint8_t* pixel = clip.view().frame(t) + (size_t(y) * 64 + x) * 3;
      expect_near_colour(pixel, bgr[2], bgr[1], bgr[0], fmt::format("frame {} quadrant {}", t, q));
    }
  }
}

TEST(DataVideo, BgrKeepsOpenCvOrderAndGrayHasOneChannel) {
  TempDir dir;
  const auto path = dir.path() / "quadrants.avi";
  testing::write_quadrant_video(path, 3, 32, 32);
  const Clip bgr = decode_video(path, {.color = ColorOrder::bgr});
  const cv::Vec3b expected = testing::quadrant_colour(0, 2);
  expect_near_colour(bgr.view().frame(2) + (8 * 32 + 8) * 3, expected[0], expected[1], expected[2],
                     "bgr");
  const Clip gray = decode_video(path, {.color = ColorOrder::gray});
  ASSERT_EQ(gray.channels, 1);
  ASSERT_EQ(gray.pixels.size(), size_t(3) * 32 * 32);
  const double luma = 0.114 * expected[0] + 0.587 * expected[1] + 0.299 * expected[2];
  EXPECT_NEAR(gray.view().frame(2)[8 * 32 + 8], luma, kCodecTolerance);
}

TEST(DataVideo, ResizesAndStopsAtMaxFrames) {
  TempDir dir;
  const auto path = dir.path() / "quadrants.avi";
  testing::write_quadrant_video(path, 9, 40, 60);
  const Clip clip = decode_video(path, {.height = 20, .width = 30, .max_frames = 4});
  EXPECT_EQ(clip.frames, 4);
  EXPECT_EQ(clip.height, 20);
  EXPECT_EQ(clip.width, 30);
  EXPECT_EQ(clip.pixels.size(), size_t(4) * 20 * 30 * 3);
  EXPECT_EQ(declared_frame_count(path), 9);
}

TEST(DataVideo, CorruptEmptyAndMissingFilesAreSkippedWithACount) {
  TempDir dir;
  testing::write_bytes(dir.path() / "empty.avi", "");
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i)
    garbage[i] = char(std::rand());
  testing::write_bytes(dir.path() / "garbage.avi", "RIFF" + garbage);
  testing::write_quadrant_video(dir.path() / "good.avi", 2, 16, 16);

  DecodeStats stats;
  EXPECT_FALSE(try_decode_video(dir.path() / "empty.avi", {}, stats));
  EXPECT_FALSE(try_decode_video(dir.path() / "garbage.avi", {}, stats));
  EXPECT_FALSE(try_decode_video(dir.path() / "missing.avi", {}, stats));
  EXPECT_TRUE(try_decode_video(dir.path() / "good.avi", {}, stats));
  EXPECT_EQ(stats.skipped, 3);
  EXPECT_EQ(stats.decoded, 1);
  EXPECT_THROW(decode_video(dir.path() / "garbage.avi", {}), Error);
}

TEST(DataVideo, ColourOrderNamesRoundTripAndUnknownIsAnError) {
  for (ColorOrder color : {ColorOrder::rgb, ColorOrder::bgr, ColorOrder::gray})
    EXPECT_EQ(parse_color_order(color_order_name(color)), color);
  EXPECT_THROW(parse_color_order("yuv"), Error);
}

}  // namespace
}  // namespace cu3d::data
