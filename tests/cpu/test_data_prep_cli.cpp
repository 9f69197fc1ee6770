// `cu3d prep --format auto|jpeg|raw --jpeg-quality Q`: how the command line picks the shards'
// frame format and records it.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/app.h"
#include "cpu/cli_testing.h"
#include "data/shard.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

int run_quietly(const std::vector<std::string>& args) {
  return apps::cli(args).status;
}

nlohmann::json manifest_of(const fs::path& shards) {
  std::ifstream in(shards / "manifest.json");
  return nlohmann::json::parse(in);
}

TEST(DataPrepCli, FormatFlagChoosesHowFramesAreStored) {
  TempDir dir;
  const std::string videos = (dir.path() / "videos").string();
  ASSERT_EQ(run_quietly({"synth", videos, "--classes", "2", "--groups", "2", "--clips", "1",
                         "--frames", "6", "--size", "32"}),
            0);
  const auto prep = [&](const std::string& name, std::vector<std::string> flags) {
    std::vector<std::string> args = {"prep", videos, (dir.path() / name).string()};
    args.insert(args.end(), flags.begin(), flags.end());
    return run_quietly(args);
  };
  ASSERT_EQ(prep("jpeg80", {"--format", "jpeg", "--jpeg-quality", "80"}), 0);
  EXPECT_EQ(manifest_of(dir.path() / "jpeg80").at("frame_format"), "jpeg");
  EXPECT_EQ(manifest_of(dir.path() / "jpeg80").at("jpeg_quality"), 80);
  EXPECT_EQ(ShardSet(dir.path() / "jpeg80").format(), FrameFormat::jpeg);
  // auto: raw for the keras recipe's 32x32 frames, JPEG for c3d's 128x171.
  ASSERT_EQ(prep("keras", {}), 0);
  EXPECT_EQ(ShardSet(dir.path() / "keras").format(), FrameFormat::raw);
  ASSERT_EQ(prep("c3d", {"--recipe", "c3d", "--depth", "4"}), 0);
  EXPECT_EQ(ShardSet(dir.path() / "c3d").format(), FrameFormat::jpeg);
  ASSERT_EQ(prep("c3d-raw", {"--recipe", "c3d", "--depth", "4", "--format", "raw"}), 0);
  EXPECT_EQ(ShardSet(dir.path() / "c3d-raw").format(), FrameFormat::raw);

  EXPECT_NE(prep("bad", {"--format", "png"}), 0);
  EXPECT_NE(prep("bad", {"--jpeg-quality", "0"}), 0);
  EXPECT_NE(prep("bad", {"--jpeg-quality", "101"}), 0);
}

}  // namespace
}  // namespace cu3d::data
