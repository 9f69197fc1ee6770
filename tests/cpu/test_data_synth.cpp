#include <fstream>
#include <set>
#include <sstream>

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
    // JPEG error on a noisy 40x32 frame: a mean absolute error of a few levels.
    EXPECT_LT(cv::norm(expected, decoded, cv::NORM_L1) / expected.total() / 3, 6.0)
        << "frame " << t;
  }
}

// The shape's centroid and area, from its distance to the background colour.
cv::Moments shape_moments(const SynthClip& clip, int t) {
  const cv::Mat frame = draw_synth_frame(clip, t);
  cv::Mat diff;
  cv::absdiff(frame, clip.background, diff);
  cv::Mat gray, mask;
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  // The distractor is static, so it shifts the centroid but not its motion.
  cv::threshold(gray, mask, 30, 255, cv::THRESH_BINARY);
  return cv::moments(mask, true);
}

TEST(DataSynth, EachClassMovesAsItsNameSays) {
  SynthOptions options = testing::tiny_synth_options();
  options.height = options.width = 96;
  for (int c = 0; c < kSynthMotions; ++c) {
    const SynthClip clip = synth_clip(options, c, 1, 1);
    const cv::Moments first = shape_moments(clip, 0),
                      last = shape_moments(clip, options.frames - 1);
    const double dx = last.m10 / last.m00 - first.m10 / first.m00;
    const double dy = last.m01 / last.m00 - first.m01 / first.m00;
    const std::string name = synth_class_name(Motion(c));
    switch (Motion(c)) {
      case Motion::move_left:
        EXPECT_LT(dx, -5) << name;
        break;
      case Motion::move_right:
        EXPECT_GT(dx, 5) << name;
        break;
      case Motion::move_up:
        EXPECT_LT(dy, -5) << name;
        break;
      case Motion::move_down:
        EXPECT_GT(dy, 5) << name;
        break;
      case Motion::rotate_cw:
        EXPECT_GT(clip.spin, 0) << name;
        break;
      case Motion::rotate_ccw:
        EXPECT_LT(clip.spin, 0) << name;
        break;
      case Motion::grow:
        EXPECT_GT(last.m00, first.m00 * 1.5) << name;
        break;
      case Motion::shrink:
        EXPECT_LT(last.m00 * 1.5, first.m00) << name;
        break;
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
