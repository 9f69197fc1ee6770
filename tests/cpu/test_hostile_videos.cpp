// Hostile videos (tests/cpu/hostile_videos.h): each bad file gives exactly one warning line naming
// it and is skipped, each decodable oddity is decoded, `cu3d prep` over a tree full of them
// (symlink loops included) counts them in its summary and trains on the rest, and the per-video
// time limit stops a decode. Nothing may crash or hang: a FIFO that the decoder opened would.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/core.h>

#include "apps/app.h"
#include "cpu/cli_testing.h"
#include "data/shard.h"
#include "data/video.h"
#include "hostile_videos.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

namespace fs = std::filesystem;
using testing::HostileVideo;
using testing::TempDir;

// Class folders "left" and "right" of 4 good 6-frame 32x32 videos each.
void write_two_classes(const fs::path& videos) {
  for (const char* name : {"left", "right"}) {
    fs::create_directories(videos / name);
    for (int i = 0; i < 4; ++i)
      testing::write_quadrant_video(videos / name / ("clip" + std::to_string(i) + ".avi"), 6, 32,
                                    32);
  }
}

int count_lines(const std::string& text, const std::string& needle) {
  int lines = 0;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines += text.substr(start, end - start).find(needle) != std::string::npos;
  return lines;
}

DecodeOptions small_gray() {
  DecodeOptions options;
  options.color = ColorOrder::gray;
  options.height = 16;
  options.width = 16;
  return options;
}

TEST(HostileVideos, EachBadFileWarnsOnceAndIsSkippedEachOddityDecodes) {
  TempDir dir;
  testing::write_quadrant_video(dir.path() / "good.avi", 6, 32, 32);
  const std::vector<HostileVideo> corpus =
      testing::write_hostile_videos(dir.path(), dir.path() / "good.avi");
  for (const HostileVideo& video : corpus) {
    SCOPED_TRACE(video.name);
    DecodeStats stats;
    ::testing::internal::CaptureStderr();
    const std::optional<Clip> clip = try_decode_video(video.path, small_gray(), stats);
    const std::string err = ::testing::internal::GetCapturedStderr();
    const int warnings = count_lines(err, "warning: skipping video");
    if (video.expect == testing::Expect::either && clip.has_value()) continue;
    if (video.expect == testing::Expect::decoded) {
      ASSERT_TRUE(clip.has_value()) << err;
      EXPECT_EQ(clip->pixels.size(), size_t(clip->frames) * 16 * 16);
      EXPECT_GE(clip->frames, 1);
      EXPECT_EQ(warnings, 0) << err;
      continue;
    }
    EXPECT_FALSE(clip.has_value());
    EXPECT_EQ(stats.skipped.load(), 1);
    EXPECT_EQ(warnings, 1) << err;
    EXPECT_EQ(count_lines(err, video.path.filename().string()), 1) << err;
  }
}

TEST(HostileVideos, FramesAboveTheSizeLimitAreRefusedNamingTheLimit) {
  TempDir dir;
  testing::write_quadrant_video(dir.path() / "good.avi", 2, 32, 32);
  for (const HostileVideo& video :
       testing::write_hostile_videos(dir.path(), dir.path() / "good.avi"))
    if (video.name == "frames above the size limit") {
      try {
        decode_video(video.path, small_gray());
        FAIL() << "decoded 8200-pixel-wide frames";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("8200x16"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("above the 8192x8192 limit"), std::string::npos)
            << e.what();
      }
    }
}

TEST(HostileVideos, DecodeTimeLimitStopsTheVideo) {
  TempDir dir;
  testing::write_quadrant_video(dir.path() / "long.avi", 8, 32, 32);
  DecodeOptions options = small_gray();
  options.time_limit_seconds = 1e-9;  // already over once the file is open
  try {
    decode_video(dir.path() / "long.avi", options);
    FAIL() << "the time limit did not stop the decode";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("long.avi"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("took over"), std::string::npos) << e.what();
  }
  options.time_limit_seconds = 60;
  EXPECT_EQ(decode_video(dir.path() / "long.avi", options).frames, 8);
}

TEST(HostileVideos, PrepSkipsAndCountsThemAndStoresTheRest) {
  TempDir dir;
  const fs::path videos = dir.path() / "videos";
  write_two_classes(videos);
  std::vector<HostileVideo> corpus =
      testing::write_hostile_videos(videos / "left", videos / "left" / "clip0.avi");
  // Cases whose outcome depends on the FFmpeg version would make the count uncertain.
  std::erase_if(corpus, [](const HostileVideo& v) {
    if (v.expect == testing::Expect::either) fs::remove(v.path);
    return v.expect == testing::Expect::either;
  });
  fs::create_directory_symlink("folder_loop", videos / "folder_loop");  // a looping class folder
  const auto bad = std::count_if(corpus.begin(), corpus.end(), [](const HostileVideo& v) {
    return v.expect == testing::Expect::skipped;
  });
  const auto good = 8 + int64_t(corpus.size()) - bad;

  const auto [status, out, err] =
      apps::cli({"prep", videos.string(), (dir.path() / "shards").string(), "--depth", "4",
                 "--threads", "2", "--layout", "tree"});
  ASSERT_EQ(status, 0) << err;
  EXPECT_NE(out.find(fmt::format("{} videos stored ({} skipped as unreadable)", good, bad)),
            std::string::npos)
      << out;
  EXPECT_EQ(count_lines(err, "warning: skipping video"), bad) << err;
  EXPECT_EQ(count_lines(err, "folder_loop"), 1) << err;
  const ShardSet shards(dir.path() / "shards");
  EXPECT_EQ(int64_t(shards.size()), good);
}

// Training straight from a video folder: a bad video warns once, not once per epoch, and the run's
// last lines count it.
TEST(HostileVideos, TrainOnAVideoFolderWarnsOncePerBadVideoAndCountsThem) {
  TempDir dir;
  const fs::path videos = dir.path() / "videos";
  write_two_classes(videos);
  for (const char* name : {"left", "right"})
    testing::write_bytes(videos / name / "noise.avi", std::string(2048, '\x5a'));
  std::ofstream(dir.path() / "tiny.json") << R"({"name": "tiny", "input": [4, 32, 32, 1],
    "layers": [{"type": "flatten", "name": "flatten"},
               {"type": "dense", "name": "fc", "units": "classes"}]})";
  const auto [status, out, err] =
      apps::cli({"train", "--model", (dir.path() / "tiny.json").string(), "--data", videos.string(),
                 "--layout", "tree", "--depth", "4", "--mean", "none", "--epochs", "3", "--batch",
                 "2", "--output", (dir.path() / "run").string()});
  ASSERT_EQ(status, 0) << err;
  EXPECT_EQ(count_lines(err, "noise.avi"), 2) << err;  // one per file over three epochs
  EXPECT_NE(out.find("train: 2 unreadable video(s) skipped"), std::string::npos) << out;
}

}  // namespace
}  // namespace cu3d::data
