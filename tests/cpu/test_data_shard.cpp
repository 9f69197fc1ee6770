#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data/shard.h"
#include "data/synth.h"
#include "data/video.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Small frames keep the test fast under ASan; colour and a dataset mean exercise every field.
Recipe small_recipe() {
  Recipe recipe = keras_recipe(8, true, true);
  recipe.mean_source = "dataset";
  return recipe;
}

PrepOptions quiet(int videos_per_shard) {
  return {.threads = 2, .videos_per_shard = videos_per_shard, .progress = false};
}

struct Prepared {
  TempDir videos, shards;
  Dataset dataset;
  PrepReport report;
};

std::unique_ptr<Prepared> prepare(int videos_per_shard = 5) {
  auto prepared = std::make_unique<Prepared>();
  write_synth_dataset(prepared->videos.path(), testing::tiny_synth_options());
  prepared->dataset = load_dataset(prepared->videos.path(), {});
  prepared->report = prepare_shards(prepared->dataset, small_recipe(), prepared->shards.path(),
                                    quiet(videos_per_shard));
  return prepared;
}

TEST(DataShard, RoundTripsDecodedFramesExactly) {
  const auto prepared = prepare();
  const Dataset& dataset = prepared->dataset;
  EXPECT_EQ(prepared->report.videos, 24);
  EXPECT_EQ(prepared->report.shards_written, 5);  // 24 videos, 5 per shard
  const ShardSet shards(prepared->shards.path());
  ASSERT_EQ(shards.size(), 24u);
  EXPECT_EQ(shards.classes(), dataset.classes);
  EXPECT_EQ(shards.split(), dataset.split);
  EXPECT_EQ(shards.indices(Side::train).size(), dataset.train.size());
  EXPECT_EQ(shards.indices(Side::test).size(), dataset.test.size());
  const Recipe recipe = small_recipe();
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardVideo& video = shards.video(i);
    const bool train = i < dataset.train.size();
    const VideoEntry& entry = train ? dataset.train[i] : dataset.test[i - dataset.train.size()];
    EXPECT_EQ(video.path, entry.path.string());
    EXPECT_EQ(video.label, entry.label);
    EXPECT_EQ(video.group, entry.group);
    EXPECT_EQ(video.side, train ? Side::train : Side::test);
    const Clip decoded = decode_video(entry.path, decode_options(recipe));
    const FrameView stored = shards.frames(i);
    ASSERT_EQ(stored.frames, decoded.frames);
    ASSERT_EQ(stored.frame_bytes(), decoded.frame_bytes());
    EXPECT_EQ(std::memcmp(stored.pixels, decoded.pixels.data(), decoded.pixels.size()), 0) << i;
    EXPECT_TRUE(shards.verify(i));
  }
}

TEST(DataShard, ManifestRecipeCarriesTheTrainingMean) {
  const auto prepared = prepare();
  const ShardSet shards(prepared->shards.path());
  std::vector<double> sums(3, 0.0);
  double pixels = 0;
  for (size_t i : shards.indices(Side::train)) {
    const FrameView view = shards.frames(i);
    const size_t bytes = size_t(view.frames) * view.frame_bytes();
    for (size_t b = 0; b < bytes; ++b)
      sums[b % 3] += view.pixels[b];
    pixels += double(bytes) / 3;
  }
  ASSERT_EQ(shards.recipe().mean.size(), 3u);
  for (size_t c = 0; c < 3; ++c)
    EXPECT_NEAR(shards.recipe().mean[c], sums[c] / pixels, 1e-3);
  EXPECT_EQ(shards.recipe().depth, 8);
}

TEST(DataShard, BadVideosAreSkippedCountedAndListed) {
  TempDir videos, out;
  fs::create_directories(videos.path() / "a");
  fs::create_directories(videos.path() / "b");
  testing::write_quadrant_video(videos.path() / "a" / "good.avi", 5, 32, 32);
  testing::write_quadrant_video(videos.path() / "b" / "short.avi", 2, 32, 32);
  testing::write_bytes(videos.path() / "b" / "empty.avi", "");
  testing::write_bytes(videos.path() / "b" / "garbage.mp4", std::string(1000, 'x'));
  const Dataset dataset = load_dataset(videos.path(), {});
  ::testing::internal::CaptureStderr();
  const PrepReport report = prepare_shards(dataset, small_recipe(), out.path(), quiet(2));
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(report.videos, 2);
  EXPECT_EQ(report.skipped, 2);
  EXPECT_NE(warnings.find("empty.avi"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("garbage.mp4"), std::string::npos) << warnings;
  const ShardSet shards(out.path());
  EXPECT_EQ(shards.size(), 2u);
  std::ifstream manifest(out.path() / "manifest.json");
  EXPECT_EQ(nlohmann::json::parse(manifest).at("skipped").size(), 2u);
}

TEST(DataShard, PrepResumesCompleteShardsAndRedoesTornOnes) {
  const auto prepared = prepare();
  const fs::path& out = prepared->shards.path();
  const PrepReport again = prepare_shards(prepared->dataset, small_recipe(), out, quiet(5));
  EXPECT_EQ(again.shards_reused, 5);
  EXPECT_EQ(again.shards_written, 0);

  fs::remove(out / "shard-00001.json");                    // interrupted before its index
  fs::resize_file(out / "shard-00003.bin", 100);           // torn .bin under a complete index
  testing::write_bytes(out / "shard-00002.bin.tmp", "x");  // leftover temporary
  const PrepReport resumed = prepare_shards(prepared->dataset, small_recipe(), out, quiet(5));
  EXPECT_EQ(resumed.shards_reused, 3);
  EXPECT_EQ(resumed.shards_written, 2);
  const ShardSet shards(out);
  for (size_t i = 0; i < shards.size(); ++i)
    EXPECT_TRUE(shards.verify(i));

  const PrepReport other_recipe = prepare_shards(prepared->dataset, keras_recipe(8), out, quiet(5));
  EXPECT_EQ(other_recipe.shards_written, 5);
}

void edit_json(const fs::path& path, const std::function<void(nlohmann::json&)>& edit) {
  std::ifstream in(path);
  nlohmann::json json = nlohmann::json::parse(in);
  in.close();
  edit(json);
  testing::write_bytes(path, json.dump());
}

std::string open_error(const fs::path& folder) {
  try {
    ShardSet shards(folder);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(DataShard, ReaderRejectsHostileShards) {
  const auto prepared = prepare();
  const fs::path out = prepared->shards.path();
  const fs::path pristine = prepared->videos.path() / "pristine";
  fs::copy(out, pristine);
  const auto reset = [&] {
    fs::remove_all(out);
    fs::copy(pristine, out);
  };
  const auto rejects = [&](const char* what, const std::string& expected) {
    const std::string message = open_error(out);
    EXPECT_NE(message.find(expected), std::string::npos) << what << ": " << message;
    reset();
  };
  fs::resize_file(out / "shard-00002.bin", 10);
  rejects("truncated bin", "truncated");
  edit_json(out / "shard-00000.json", [](auto& j) { j["videos"][1]["offset"] = 1ull << 40; });
  rejects("offset past the end", "outside");
  edit_json(out / "shard-00000.json", [](auto& j) { j["videos"][0]["frames"] = 7; });
  rejects("frames disagree with bytes", "do not hold");
  edit_json(out / "shard-00000.json", [](auto& j) { j["videos"][0]["label"] = 99; });
  rejects("label out of range", "label 99");
  edit_json(out / "shard-00000.json", [](auto& j) { j["videos"][0].erase("bytes"); });
  rejects("missing field", "malformed");
  edit_json(out / "manifest.json", [](auto& j) { j["shards"][0]["name"] = "../../etc/passwd"; });
  rejects("path in shard name", "shard-NNNNN");
  edit_json(out / "manifest.json", [](auto& j) { j["version"] = 99; });
  rejects("future version", "version");
  edit_json(out / "manifest.json", [](auto& j) { j["recipe"]["crop_height"] = 1000; });
  rejects("bad recipe", "crop");
  testing::write_bytes(out / "manifest.json", "{\"format\": ");
  rejects("torn manifest", "not a JSON object");
  fs::remove(out / "manifest.json");
  rejects("no manifest", "run prep");
  EXPECT_EQ(open_error(out), "");
}

}  // namespace
}  // namespace cu3d::data
