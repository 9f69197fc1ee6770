#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "data/json_fields.h"
#include "data/shard.h"
#include "data/shard_format.h"
#include "engine/checksum.h"
#include "kernels/error.h"

namespace cu3d::data {
namespace fs = std::filesystem;
namespace {

// "shard-NNNNN": the only names prep writes; anything else (a path, "..") is refused.
bool is_shard_name(const std::string& name) {
  constexpr std::string_view prefix = "shard-";
  return name.size() == prefix.size() + 5 && name.starts_with(prefix) &&
         std::all_of(name.begin() + prefix.size(), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// A manifest or index of a million videos is ~200 MB of JSON; anything larger is not ours.
constexpr uintmax_t kMaxJsonBytes = 512ull << 20;
// No video has more frames than this (an hour at 30 fps, twice over).
constexpr int64_t kMaxFrames = 216000;

nlohmann::json read_json(const fs::path& path) {
  CU3D_CHECK(fs::is_regular_file(path), "{}: not found; run prep to (re)create the shards",
             path.string());
  CU3D_CHECK(fs::file_size(path) <= kMaxJsonBytes, "{}: {} bytes is too large for a shard index",
             path.string(), fs::file_size(path));
  std::ifstream in(path, std::ios::binary);
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  CU3D_CHECK(!json.is_discarded() && json.is_object(), "{}: not a JSON object", path.string());
  return json;
}

uint64_t parse_checksum(const std::string& text, const fs::path& file) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  CU3D_CHECK(text.size() == 16 && error == std::errc() && end == text.data() + text.size(),
             "{}: checksum '{}' is not 16 hex digits", file.string(), text);
  return value;
}

void check_header(const nlohmann::json& json, const char* format, const fs::path& file) {
  CU3D_CHECK(json.at("format") == format, "{}: format is {}, expected {}", file.string(),
             json.at("format").dump(), format);
  CU3D_CHECK(json.at("version") == kShardFormatVersion,
             "{}: shard format version {} is not the supported {}; run prep again", file.string(),
             json.at("version").dump(), kShardFormatVersion);
}

Side parse_side(const std::string& text, const fs::path& file) {
  CU3D_CHECK(text == "train" || text == "test", "{}: side '{}' is neither train nor test",
             file.string(), text);
  return text == "train" ? Side::train : Side::test;
}

// One index entry, checked against the mapped shard: offsets and sizes never trusted.
ShardVideo read_video(const nlohmann::json& entry, const MappedFile& bin, size_t frame_bytes,
                      int classes, const fs::path& file) {
  ShardVideo video;
  video.path = entry.at("path").get<std::string>();
  video.label = get_integer<int>(entry, "label", file.string());
  video.group = entry.at("group").get<std::string>();
  video.side = parse_side(entry.at("side").get<std::string>(), file);
  const int64_t frames = get_integer<int64_t>(entry, "frames", file.string());
  const uint64_t offset = get_integer<uint64_t>(entry, "offset", file.string());
  const uint64_t bytes = get_integer<uint64_t>(entry, "bytes", file.string());
  video.checksum = parse_checksum(entry.at("checksum").get<std::string>(), file);
  CU3D_CHECK(video.label >= 0 && video.label < classes, "{}: {}: label {} is not in 0..{}",
             file.string(), video.path, video.label, classes - 1);
  CU3D_CHECK(frames >= 1 && frames <= kMaxFrames, "{}: {}: frame count {} is not in 1..{}",
             file.string(), video.path, frames, kMaxFrames);
  CU3D_CHECK(bytes == uint64_t(frames) * frame_bytes,
             "{}: {}: {} bytes do not hold {} frames of {} bytes", file.string(), video.path, bytes,
             frames, frame_bytes);
  CU3D_CHECK(offset <= bin.size() && bytes <= bin.size() - offset,
             "{}: {}: bytes {}..{} lie outside the {}-byte shard", file.string(), video.path,
             offset, offset + bytes, bin.size());
  video.frames = int(frames);
  video.pixels = bin.data() + offset;
  return video;
}

}  // namespace

ShardSet::ShardSet(const fs::path& folder) {
  const fs::path manifest_path = folder / "manifest.json";
  fs::path current = manifest_path;
  try {
    const nlohmann::json manifest = read_json(manifest_path);
    check_header(manifest, kManifestFormat, manifest_path);
    recipe_ = recipe_from_json(manifest.at("recipe"), manifest_path.string());
    classes_ = manifest.at("classes").get<std::vector<std::string>>();
    split_ = manifest.at("split").get<std::string>();
    CU3D_CHECK(!classes_.empty(), "{}: no classes", manifest_path.string());
    const auto [depth, height, width, channels] = clip_shape(recipe_);
    const size_t frame_bytes = size_t(recipe_.resize_height) * recipe_.resize_width * channels;
    for (const nlohmann::json& shard : manifest.at("shards")) {
      const std::string name = shard.at("name").get<std::string>();
      CU3D_CHECK(is_shard_name(name), "{}: shard name '{}' is not shard-NNNNN",
                 manifest_path.string(), name);
      current = shard_index(folder, name);
      const nlohmann::json index = read_json(current);
      check_header(index, kIndexFormat, current);
      CU3D_CHECK(index.at("key").at("recipe") == decode_key(recipe_),
                 "{}: decoded with another recipe than the manifest's; run prep again",
                 current.string());
      MappedFile& bin = maps_.emplace_back(shard_bin(folder, name));
      CU3D_CHECK(get_integer<uint64_t>(index, "bytes", current.string()) == bin.size() &&
                     get_integer<uint64_t>(shard, "bytes", manifest_path.string()) == bin.size(),
                 "{}: the shard holds {} bytes but its index says {}; it is truncated or stale",
                 shard_bin(folder, name).string(), bin.size(), index.at("bytes").dump());
      for (const nlohmann::json& entry : index.at("videos"))
        videos_.push_back(read_video(entry, bin, frame_bytes, int(classes_.size()), current));
    }
  } catch (const nlohmann::json::exception& error) {
    throw Error(fmt::format("{}: malformed: {}", current.string(), error.what()));
  }
  CU3D_CHECK(!videos_.empty(), "{}: the shards hold no videos", folder.string());
}

FrameView ShardSet::frames(size_t i) const {
  const ShardVideo& video = videos_[i];
  return {video.frames, recipe_.resize_height, recipe_.resize_width, color_channels(recipe_.color),
          video.pixels};
}

std::vector<size_t> ShardSet::indices(Side side) const {
  std::vector<size_t> selected;
  for (size_t i = 0; i < videos_.size(); ++i)
    if (videos_[i].side == side) selected.push_back(i);
  return selected;
}

bool ShardSet::verify(size_t i) const {
  const FrameView view = frames(i);
  return fnv1a64(view.pixels, size_t(view.frames) * view.frame_bytes()) == videos_[i].checksum;
}

}  // namespace cu3d::data
