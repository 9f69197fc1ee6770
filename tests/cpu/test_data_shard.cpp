#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data/shard.h"
#include "data/synth.h"
#include "data/video.h"
#include "kernels/error.h"
#include "synthetic_frames.h"
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

PrepOptions quiet(int videos_per_shard, FrameFormat format = FrameFormat::raw) {
  return {.threads = 2, .videos_per_shard = videos_per_shard, .progress = false, .format = format};
}

struct Prepared {
  TempDir videos, shards;
  Dataset dataset;
  PrepReport report;
};

std::unique_ptr<Prepared> prepare(int videos_per_shard = 5, FrameFormat format = FrameFormat::raw) {
  auto prepared = std::make_unique<Prepared>();
  write_synth_dataset(prepared->videos.path(), testing::tiny_synth_options());
  prepared->dataset = load_dataset(prepared->videos.path(), {});
  prepared->report = prepare_shards(prepared->dataset, small_recipe(), prepared->shards.path(),
                                    quiet(videos_per_shard, format));
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

// prepare_shards with a decoder of its own (no video files, no OpenCV): every video's stored
// frames are the decoder's, byte for byte, with its label, group and side.
TEST(DataShard, StoresWhatAnyDecoderGives) {
  const Dataset dataset = testing::in_memory_dataset(3, 4, 2);
  const Recipe recipe = keras_recipe(4, true, true);
  TempDir out;
  const PrepReport report =
      prepare_shards(dataset, recipe, out.path(), {.videos_per_shard = 5, .progress = false},
                     testing::synthetic_frames);
  EXPECT_EQ(report.videos, 18);
  EXPECT_EQ(report.shards_written, 4);
  const ShardSet shards(out.path());
  ASSERT_EQ(shards.size(), 18u);
  EXPECT_EQ(shards.classes(), dataset.classes);
  EXPECT_EQ(shards.indices(Side::train).size(), 12u);
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardVideo& video = shards.video(i);
    SCOPED_TRACE(video.path);
    DecodeStats stats;
    const Clip want = *testing::synthetic_frames(video.path, decode_options(recipe), stats);
    const FrameView got = shards.frames(i);
    ASSERT_EQ(got.frames, want.frames);
    ASSERT_EQ(got.frame_bytes(), want.frame_bytes());
    EXPECT_EQ(std::memcmp(got.pixels, want.pixels.data(), want.pixels.size()), 0);
    EXPECT_EQ(video.label, std::stoi(video.group.substr(1, video.group.find('_') - 1)));
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

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

double mean_abs_error(const uint8_t* a, const uint8_t* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += std::abs(int(a[i]) - int(b[i]));
  return sum / double(n);
}

TEST(DataShard, JpegShardsRoundTripWithinJpegTolerance) {
  const auto prepared = prepare(5, FrameFormat::jpeg);
  const Dataset& dataset = prepared->dataset;
  EXPECT_EQ(prepared->report.videos, 24);
  const ShardSet shards(prepared->shards.path());
  EXPECT_EQ(shards.format(), FrameFormat::jpeg);
  const nlohmann::json manifest = read_json_file(prepared->shards.path() / "manifest.json");
  EXPECT_EQ(manifest.at("frame_format"), "jpeg");
  EXPECT_EQ(manifest.at("jpeg_quality"), 95);
  EXPECT_THROW(shards.frames(0), Error) << "JPEG frames have no raw view";
  const Recipe recipe = small_recipe();
  Clip stored;
  for (size_t i = 0; i < shards.size(); ++i) {
    const bool train = i < dataset.train.size();
    const VideoEntry& entry = train ? dataset.train[i] : dataset.test[i - dataset.train.size()];
    EXPECT_EQ(shards.video(i).path, entry.path.string());
    const Clip decoded = decode_video(entry.path, decode_options(recipe));
    shards.read_video(i, stored);
    ASSERT_EQ(stored.frames, decoded.frames);
    ASSERT_EQ(stored.pixels.size(), decoded.pixels.size());
    // q95 on 32x32 noisy colour frames: a few levels on average; a swapped channel, frame or
    // row would be tens.
    EXPECT_LT(mean_abs_error(stored.pixels.data(), decoded.pixels.data(), decoded.pixels.size()),
              5.0)
        << i;
    std::vector<uint8_t> frame(stored.frame_bytes());
    shards.read_frame(i, decoded.frames - 1, frame.data());
    EXPECT_EQ(std::memcmp(frame.data(), stored.frame(decoded.frames - 1), frame.size()), 0);
    EXPECT_TRUE(shards.verify(i));
  }
}

TEST(DataShard, PrepRedoesShardsStoredInAnotherFormat) {
  const auto prepared = prepare(5, FrameFormat::raw);
  const fs::path& out = prepared->shards.path();
  const PrepReport jpeg =
      prepare_shards(prepared->dataset, small_recipe(), out, quiet(5, FrameFormat::jpeg));
  EXPECT_EQ(jpeg.shards_written, 5);
  EXPECT_EQ(ShardSet(out).format(), FrameFormat::jpeg);
  PrepOptions other_quality = quiet(5, FrameFormat::jpeg);
  other_quality.jpeg_quality = 80;
  EXPECT_EQ(prepare_shards(prepared->dataset, small_recipe(), out, other_quality).shards_written,
            5);
  EXPECT_EQ(prepare_shards(prepared->dataset, small_recipe(), out, other_quality).shards_reused, 5);
  other_quality.jpeg_quality = 0;
  EXPECT_THROW(prepare_shards(prepared->dataset, small_recipe(), out, other_quality), Error);
}

// Where frame t of the first video of shard-00000 starts in its .bin, and its size.
std::pair<uint64_t, uint64_t> first_video_frame(const fs::path& out, int t) {
  const nlohmann::json index = read_json_file(out / "shard-00000.json");
  const uint64_t offset = index.at("videos")[0].at("offset").get<uint64_t>();
  std::ifstream bin(out / "shard-00000.bin", std::ios::binary);
  uint8_t table[16];
  bin.seekg(std::streamoff(offset + 8 * uint64_t(t)));
  bin.read(reinterpret_cast<char*>(table), 16);
  const auto le64 = [](const uint8_t* p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i)
      value = value << 8 | p[i];
    return value;
  };
  return {offset + le64(table), le64(table + 8) - le64(table)};
}

void overwrite(const fs::path& file, uint64_t at, const std::string& bytes) {
  std::fstream stream(file, std::ios::binary | std::ios::in | std::ios::out);
  stream.seekp(std::streamoff(at));
  stream.write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(DataShard, CorruptJpegFrameIsAnErrorNamingShardVideoAndFrame) {
  const auto prepared = prepare(5, FrameFormat::jpeg);
  const fs::path& out = prepared->shards.path();
  const auto [start, size] = first_video_frame(out, 2);
  ASSERT_GT(size, 100u);
  const auto error_reading = [&](int t) {
    const ShardSet shards(out);
    Clip clip;
    shards.read_video(1, clip);  // frame-sized buffer
    std::vector<uint8_t> frame(clip.frame_bytes());
    try {
      shards.read_frame(0, t, frame.data());
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_reading(2), "");
  overwrite(out / "shard-00000.bin", start, "XX");  // the start-of-image marker
  const std::string message = error_reading(2);
  EXPECT_NE(message.find("shard-00000.bin"), std::string::npos) << message;
  EXPECT_NE(message.find(prepared->dataset.train[0].path.filename().string()), std::string::npos)
      << message;
  EXPECT_NE(message.find("frame 2"), std::string::npos) << message;
  EXPECT_NE(message.find("run prep again"), std::string::npos) << message;
  EXPECT_EQ(error_reading(1), "") << "a neighbouring frame stays readable";
  // The second half of a frame (its end-of-image marker included) overwritten with 0xFF: libjpeg
  // only warns that the data ends early and pads the picture with grey; we refuse the frame.
  const auto [start3, size3] = first_video_frame(out, 3);
  overwrite(out / "shard-00000.bin", start3 + size3 / 2, std::string(size_t(size3 / 2), '\xff'));
  EXPECT_NE(error_reading(3), "");
}

TEST(DataShard, ReaderRejectsHostileJpegFrameTables) {
  const auto prepared = prepare(5, FrameFormat::jpeg);
  const fs::path out = prepared->shards.path();
  const uint64_t offset =
      read_json_file(out / "shard-00000.json").at("videos")[0].at("offset").get<uint64_t>();
  const std::string pristine = [&] {
    std::ifstream in(out / "shard-00000.bin", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  const auto rejects = [&](const char* what, uint64_t entry, uint64_t value,
                           const std::string& expected) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i)
      bytes[size_t(i)] = char(value >> (8 * i));
    overwrite(out / "shard-00000.bin", offset + 8 * entry, bytes);
    const std::string message = open_error(out);
    EXPECT_NE(message.find(expected), std::string::npos) << what << ": " << message;
    testing::write_bytes(out / "shard-00000.bin", pristine);
  };
  rejects("first frame inside the table", 0, 8, "not after the table");
  rejects("frame past the video", 5, 1ull << 40, "frame 4 spans");
  rejects("frame going backwards", 3, 0, "frame 2 spans");
  EXPECT_EQ(open_error(out), "");
  edit_json(out / "shard-00001.json", [](auto& j) { j["key"]["frame_format"] = "raw"; });
  EXPECT_NE(open_error(out).find("otherwise than the manifest"), std::string::npos);
}

}  // namespace
}  // namespace cu3d::data
