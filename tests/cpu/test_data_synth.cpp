#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <set>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "data/synth.h"
#include "data/ucf_name.h"
#include "data/video.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

using testing::TempDir;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(path));
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// Group numbers named in a split list ("Class/v_Class_g03_c01.avi [label]").
std::set<int> groups_in(const std::filesystem::path& list) {
  std::set<int> groups;
  for (const std::string& line : lines_of(list)) {
    const std::string file =
        line.substr(line.find('/') + 1, line.find(".avi") + 4 - line.find('/') - 1);
    groups.insert(parse_ucf_name(file).value().group);
  }
  return groups;
}

TEST(DataSynth, WritesUcfLayoutWithOfficialStyleSplits) {
  TempDir dir;
  const SynthOptions options = testing::tiny_synth_options();
  write_synth_dataset(dir.path(), options);
  for (int c = 0; c < options.classes; ++c) {
    const std::string name = synth_class_name(Motion(c));
    for (int g = 1; g <= options.groups; ++g)
      for (int k = 1; k <= options.clips_per_group; ++k)
        EXPECT_TRUE(
            std::filesystem::is_regular_file(dir.path() / name / format_ucf_name({name, g, k})));
  }
  const auto lists = dir.path() / "ucfTrainTestlist";
  EXPECT_EQ(read_text(lists / "classInd.txt"), "1 MoveLeft\n2 MoveRight\n3 MoveUp\n");
  // 4 groups: one held out per split, three splits.
  for (int split = 1; split <= 3; ++split) {
    const auto train = lists / fmt::format("trainlist{:02d}.txt", split);
    const auto test = lists / fmt::format("testlist{:02d}.txt", split);
    EXPECT_EQ(groups_in(test), std::set<int>{split});
    EXPECT_EQ(groups_in(train).count(split), 0u);
    EXPECT_EQ(lines_of(train).size() + lines_of(test).size(), 3u * 4 * 2);
  }
  EXPECT_EQ(lines_of(lists / "trainlist01.txt").front(), "MoveLeft/v_MoveLeft_g02_c01.avi 1");
  EXPECT_EQ(lines_of(lists / "testlist01.txt").front(), "MoveLeft/v_MoveLeft_g01_c01.avi");
}

TEST(DataSynth, SameSeedSameBytesOtherSeedOtherVideo) {
  TempDir a, b, c;
  SynthOptions options = testing::tiny_synth_options();
  options.classes = 1;
  options.groups = 2;
  options.clips_per_group = 1;
  write_synth_dataset(a.path(), options);
  write_synth_dataset(b.path(), options);
  options.seed += 1;
  write_synth_dataset(c.path(), options);
  const auto file = std::filesystem::path("MoveLeft") / "v_MoveLeft_g01_c01.avi";
  EXPECT_EQ(read_text(a.path() / file), read_text(b.path() / file));
  EXPECT_NE(read_text(a.path() / file), read_text(c.path() / file));
}

TEST(DataSynth, DecodedFramesMatchWhatWasDrawn) {
  TempDir dir;
  const SynthOptions options = testing::tiny_synth_options();
  write_synth_dataset(dir.path(), options);
  const Clip clip =
      decode_video(dir.path() / "MoveUp" / "v_MoveUp_g02_c01.avi", {.color = ColorOrder::bgr});
  ASSERT_EQ(clip.frames, options.frames);
  const SynthClip drawn = synth_clip(options, int(Motion::move_up), 2, 1);
  for (int t : {0, options.frames / 2, options.frames - 1}) {
    const cv::Mat expected = draw_synth_frame(drawn, t);
    const cv::Mat decoded(clip.height, clip.width, CV_8UC3,
                          const_cast<uint8_t*>(clip.view().frame(t)));
    // MJPG smooths the per-frame noise away (up to sigma 8, a mean absolute error of 6.4 levels
    // by itself), so compare what was drawn: both frames blurred, which averages the noise out.
    cv::Mat expected_blurred, decoded_blurred;
    cv::GaussianBlur(expected, expected_blurred, {5, 5}, 1.5);
    cv::GaussianBlur(decoded, decoded_blurred, {5, 5}, 1.5);
    EXPECT_LT(cv::norm(expected_blurred, decoded_blurred, cv::NORM_L1) / expected.total() / 3, 3.0)
        << "frame " << t;
  }
}

// The mask of the moving shape in frame t of a clip drawn without noise and distractor.
cv::Mat shape_mask(SynthClip clip, int t) {
  clip.noise_sigma = 0;
  clip.distractor = clip.background;
  cv::Mat diff, gray, mask;
  cv::absdiff(draw_synth_frame(clip, t), clip.background, diff);
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  cv::threshold(gray, mask, 30, 1, cv::THRESH_BINARY);
  return mask;
}

// The mask's centre on the torus the shape moves on: the circular mean of its columns (x) and rows
// (y), which stays right when the shape straddles an edge.
cv::Point2d torus_centroid(const cv::Mat& mask) {
  cv::Point2d sx, sy;
  for (int y = 0; y < mask.rows; ++y)
    for (int x = 0; x < mask.cols; ++x) {
      if (!mask.at<uint8_t>(y, x)) continue;
      const double ax = 2 * std::numbers::pi * x / mask.cols;
      const double ay = 2 * std::numbers::pi * y / mask.rows;
      sx += {std::cos(ax), std::sin(ax)};
      sy += {std::cos(ay), std::sin(ay)};
    }
  return {std::atan2(sx.y, sx.x) * mask.cols / (2 * std::numbers::pi),
          std::atan2(sy.y, sy.x) * mask.rows / (2 * std::numbers::pi)};
}

// d wrapped into [-period/2, period/2): a step on the torus.
double torus_step(double d, double period) {
  return d - period * std::floor(d / period + 0.5);
}

struct ObservedMotion {
  cv::Point2d travel;           // summed per-frame steps of the centroid, pixels
  int larger = 0, smaller = 0;  // frames whose shape area grew / shrank
};

ObservedMotion observe(const SynthClip& clip) {
  ObservedMotion seen;
  cv::Mat before = shape_mask(clip, 0);
  for (int t = 1; t < clip.frames; ++t) {
    const cv::Mat after = shape_mask(clip, t);
    const cv::Point2d step = torus_centroid(after) - torus_centroid(before);
    seen.travel += {torus_step(step.x, clip.width), torus_step(step.y, clip.height)};
    const double ratio = cv::sum(after)[0] / cv::sum(before)[0];
    seen.larger += ratio > 1;
    seen.smaller += ratio < 1;
    before = after;
  }
  return seen;
}

TEST(DataSynth, EachClassMovesAsItsNameSays) {
  SynthOptions options = testing::tiny_synth_options();
  options.height = options.width = 96;
  for (int c = 0; c < kSynthMotions; ++c)
    for (int k = 1; k <= 3; ++k) {
      const SynthClip clip = synth_clip(options, c, 1, k);
      const ObservedMotion seen = observe(clip);
      const double dx = seen.travel.x, dy = seen.travel.y;
      const int steps = options.frames - 1;
      const std::string name = synth_class_name(Motion(c));
      switch (Motion(c)) {
        case Motion::move_left:
          EXPECT_LT(dx, -10) << name;
          EXPECT_NEAR(dy, 0, 2) << name;
          break;
        case Motion::move_right:
          EXPECT_GT(dx, 10) << name;
          EXPECT_NEAR(dy, 0, 2) << name;
          break;
        case Motion::move_up:
          EXPECT_LT(dy, -10) << name;
          EXPECT_NEAR(dx, 0, 2) << name;
          break;
        case Motion::move_down:
          EXPECT_GT(dy, 10) << name;
          EXPECT_NEAR(dx, 0, 2) << name;
          break;
        case Motion::rotate_cw:
          EXPECT_GT(clip.spin, 0) << name;
          break;
        case Motion::rotate_ccw:
          EXPECT_LT(clip.spin, 0) << name;
          break;
        // Nearly every step changes the area the right way; the exceptions are where the radius
        // wraps around and rounding to whole pixels.
        case Motion::grow:
          EXPECT_GE(seen.larger, steps * 3 / 4) << name;
          EXPECT_LE(seen.smaller, steps / 8) << name;
          break;
        case Motion::shrink:
          EXPECT_GE(seen.smaller, steps * 3 / 4) << name;
          EXPECT_LE(seen.larger, steps / 8) << name;
          break;
      }
    }
}

// What one frame shows of where the shape is and how big: the fraction of the foreground mask
// (pixels far from the background colour) in each of 4 column bands and 4 row bands, and the mask's
// share of the frame.
constexpr int kBands = 4;
std::vector<double> frame_features(const SynthClip& clip, int t) {
  cv::Mat diff, gray, mask;
  cv::absdiff(draw_synth_frame(clip, t), clip.background, diff);
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  cv::threshold(gray, mask, 30, 1, cv::THRESH_BINARY);
  const double area = std::max(1.0, cv::sum(mask)[0]);
  std::vector<double> features(2 * kBands + 1, 0.0);
  for (int y = 0; y < mask.rows; ++y)
    for (int x = 0; x < mask.cols; ++x) {
      if (!mask.at<uint8_t>(y, x)) continue;
      features[x * kBands / mask.cols] += 1 / area;
      features[kBands + y * kBands / mask.rows] += 1 / area;
    }
  features.back() = area / double(mask.total());
  return features;
}

// A single frame must not tell the class: at any fixed time in the clip (a 2D model sees frame 0
// of one video and frame 31 of another) every class puts the shape in the same places with the same
// sizes. The per-class means of frame_features must agree within sampling error (5 standard errors)
// for every pair of classes, at the first, middle and last frame. A shape that starts on the side
// it moves away from, or starts small when it grows, fails by 8 standard errors or more.
TEST(DataSynth, OneFrameDoesNotTellTheClass) {
  SynthOptions options = testing::tiny_synth_options();
  options.classes = kSynthMotions;
  options.frames = 32;
  options.height = options.width = 48;
  constexpr int kGroups = 12, kClips = 6;
  for (int t : {0, options.frames / 2, options.frames - 1}) {
    std::vector<std::vector<double>> mean(kSynthMotions), variance(kSynthMotions);
    for (int c = 0; c < kSynthMotions; ++c) {
      std::vector<std::vector<double>> samples;
      for (int g = 1; g <= kGroups; ++g)
        for (int k = 1; k <= kClips; ++k)
          samples.push_back(frame_features(synth_clip(options, c, g, k), t));
      const size_t n = samples.size(), dims = samples[0].size();
      mean[c].assign(dims, 0.0);
      variance[c].assign(dims, 0.0);
      for (const auto& sample : samples)
        for (size_t i = 0; i < dims; ++i)
          mean[c][i] += sample[i] / double(n);
      for (const auto& sample : samples)
        for (size_t i = 0; i < dims; ++i)
          variance[c][i] += std::pow(sample[i] - mean[c][i], 2) / double(n - 1);
    }
    const double n = kGroups * kClips;
    for (int a = 0; a < kSynthMotions; ++a)
      for (int b = a + 1; b < kSynthMotions; ++b)
        for (size_t i = 0; i < mean[a].size(); ++i) {
          const double error = std::sqrt((variance[a][i] + variance[b][i]) / n);
          EXPECT_LT(std::abs(mean[a][i] - mean[b][i]), 5 * error + 1e-9)
              << "frame " << t << ", feature " << i << ": " << synth_class_name(Motion(a)) << " vs "
              << synth_class_name(Motion(b));
        }
  }
}

TEST(DataSynth, RejectsOptionsOutOfRange) {
  SynthOptions options = testing::tiny_synth_options();
  options.classes = kSynthMotions + 1;
  TempDir dir;
  EXPECT_THROW(write_synth_dataset(dir.path(), options), Error);
  options = testing::tiny_synth_options();
  options.groups = 1;
  EXPECT_THROW(write_synth_dataset(dir.path(), options), Error);
}

}  // namespace
}  // namespace cu3d::data
