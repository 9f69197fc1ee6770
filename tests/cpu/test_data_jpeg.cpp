// data/jpeg: the TurboJPEG encode/decode of shard frames, and its refusal of hostile bytes.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/jpeg.h"
#include "kernels/error.h"

namespace cu3d::data {
namespace {

// A frame like a video's: smooth gradients, a sharp-edged block and a little noise, fresh for
// every seed.
std::vector<uint8_t> natural_frame(const JpegFrameShape& shape, uint32_t seed) {
  std::mt19937 random(seed);
  std::normal_distribution<double> noise(0, 2);
  std::uniform_int_distribution<int> corner(0, std::min(shape.height, shape.width) / 2);
  const int top = corner(random), left = corner(random);
  std::vector<uint8_t> pixels;
  for (int y = 0; y < shape.height; ++y)
    for (int x = 0; x < shape.width; ++x)
      for (int c = 0; c < shape.channels; ++c) {
        const bool block = y >= top && y < top + 12 && x >= left && x < left + 12;
        const double value = block ? 200 - 50 * c : 40 + 1.5 * x + 0.8 * y + 20 * c;
        pixels.push_back(uint8_t(std::clamp(value + noise(random), 0.0, 255.0)));
      }
  return pixels;
}

double mean_abs_error(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i)
    sum += std::abs(int(a[i]) - int(b[i]));
  return sum / double(a.size());
}

TEST(DataJpeg, RoundTripsWithinQualityTolerance) {
  for (const JpegFrameShape shape : {JpegFrameShape{128, 171, 3, false},
                                     JpegFrameShape{120, 160, 3, true}, JpegFrameShape{32, 32, 1}})
    for (const int quality : {75, 95}) {
      const std::vector<uint8_t> frame = natural_frame(shape, uint32_t(shape.width + quality));
      const std::vector<uint8_t> jpeg = encode_jpeg(frame.data(), shape, quality);
      EXPECT_LT(jpeg.size(), frame.size()) << shape.width << " q" << quality;
      std::vector<uint8_t> decoded(frame.size(), 0);
      EXPECT_EQ(decode_jpeg(jpeg.data(), jpeg.size(), shape, decoded.data()), "");
      // q95 stays within ~2 levels on average (the noise itself is 1.6), q75 within ~4.
      EXPECT_LT(mean_abs_error(frame, decoded), quality == 95 ? 2.5 : 4.5)
          << shape.width << "x" << shape.height << "x" << shape.channels << " q" << quality;
    }
}

TEST(DataJpeg, RefusesGarbageWrongSizeAndTruncatedFrames) {
  const JpegFrameShape shape{48, 64, 3};
  const std::vector<uint8_t> frame = natural_frame(shape, 5);
  const std::vector<uint8_t> jpeg = encode_jpeg(frame.data(), shape, 90);
  std::vector<uint8_t> out(frame.size());

  const std::vector<uint8_t> garbage(500, 0x5a);
  EXPECT_NE(decode_jpeg(garbage.data(), garbage.size(), shape, out.data()).find("not a JPEG"),
            std::string::npos);
  // A frame larger than the buffer would overflow it: the header is checked first.
  const JpegFrameShape smaller{24, 64, 3};
  EXPECT_NE(decode_jpeg(jpeg.data(), jpeg.size(), smaller, out.data()).find("64x48"),
            std::string::npos);
  // Cut mid-scan: libjpeg only warns (and pads with grey); we refuse.
  EXPECT_NE(decode_jpeg(jpeg.data(), jpeg.size() * 2 / 3, shape, out.data()), "");
  EXPECT_EQ(decode_jpeg(jpeg.data(), jpeg.size(), shape, out.data()), "");
  // The second half (end marker included) overwritten with 0xFF: refused, and the thread's next
  // good frame still decodes (TurboJPEG 2.1 left the handle unable to, before it was replaced).
  std::vector<uint8_t> damaged = jpeg;
  std::fill(damaged.begin() + ptrdiff_t(damaged.size() / 2), damaged.end(), 0xff);
  EXPECT_NE(decode_jpeg(damaged.data(), damaged.size(), shape, out.data()), "");
  EXPECT_EQ(decode_jpeg(jpeg.data(), jpeg.size(), shape, out.data()), "");
  std::vector<uint8_t> again(frame.size());
  EXPECT_EQ(decode_jpeg(jpeg.data(), jpeg.size(), shape, again.data()), "");
  EXPECT_EQ(out, again);
}

TEST(DataJpeg, RejectsBadQualityAndShape) {
  const JpegFrameShape shape{8, 8, 3};
  const std::vector<uint8_t> frame(8 * 8 * 3, 100);
  EXPECT_THROW(encode_jpeg(frame.data(), shape, 0), Error);
  EXPECT_THROW(encode_jpeg(frame.data(), shape, 101), Error);
  EXPECT_THROW(encode_jpeg(frame.data(), {8, 8, 2}, 90), Error);
}

}  // namespace
}  // namespace cu3d::data
