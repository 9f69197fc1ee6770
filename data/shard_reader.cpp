#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "data/jpeg.h"
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
  const nlohmann::json& version = json.at("version");
  CU3D_CHECK(version.is_number_integer() && version.get<int64_t>() >= kOldestShardFormatVersion &&
                 version.get<int64_t>() <= kShardFormatVersion,
             "{}: shard format version {} is not one of the supported {}..{}; run prep again",
             file.string(), version.dump(), kOldestShardFormatVersion, kShardFormatVersion);
}

// The manifest's or index key's frame format; version 1 shards, which predate JPEG, have none.
FrameFormat read_frame_format(const nlohmann::json& json, const fs::path& file) {
  if (!json.contains("frame_format")) return FrameFormat::raw;
  return parse_frame_format(json.at("frame_format").get<std::string>(), file.string());
}

Side parse_side(const std::string& text, const fs::path& file) {
  CU3D_CHECK(text == "train" || text == "test", "{}: side '{}' is neither train nor test",
             file.string(), text);
  return text == "train" ? Side::train : Side::test;
}

// A JPEG video's frame table: it must fit the video, start right after itself, grow with every
// frame and end at the video's size, so that every frame is a non-empty range inside the video.
void check_frame_table(const ShardVideo& video, const fs::path& file) {
  const uint64_t table_bytes = (uint64_t(video.frames) + 1) * kFrameTableEntry;
  CU3D_CHECK(video.bytes >= table_bytes,
             "{}: {}: {} bytes cannot hold the frame table of {} frames; run prep again",
             file.string(), video.path, video.bytes, video.frames);
  uint64_t previous = get_le64(video.data, 0);
  CU3D_CHECK(previous == table_bytes, "{}: {}: the first frame starts at {}, not after the table",
             file.string(), video.path, previous);
  for (size_t t = 1; t <= size_t(video.frames); ++t) {
    const uint64_t next = get_le64(video.data, t);
    CU3D_CHECK(next > previous && next <= video.bytes,
               "{}: {}: frame {} spans bytes {}..{} of a {}-byte video; run prep again",
               file.string(), video.path, t - 1, previous, next, video.bytes);
    previous = next;
  }
  CU3D_CHECK(previous == video.bytes, "{}: {}: the frames end at byte {} of {}", file.string(),
             video.path, previous, video.bytes);
}

// One index entry, checked against the mapped shard: offsets and sizes never trusted.
ShardVideo read_index_entry(const nlohmann::json& entry, const MappedFile& bin, size_t frame_bytes,
                            FrameFormat format, int classes, const fs::path& file) {
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
  CU3D_CHECK(format == FrameFormat::jpeg || bytes == uint64_t(frames) * frame_bytes,
             "{}: {}: {} bytes do not hold {} frames of {} bytes", file.string(), video.path, bytes,
             frames, frame_bytes);
  CU3D_CHECK(offset <= bin.size() && bytes <= bin.size() - offset,
             "{}: {}: bytes {}..{} lie outside the {}-byte shard", file.string(), video.path,
             offset, offset + bytes, bin.size());
  video.frames = int(frames);
  video.data = bin.data() + offset;
  video.bytes = bytes;
  if (format == FrameFormat::jpeg) check_frame_table(video, file);
  return video;
}

}  // namespace

ShardSet::ShardSet(const fs::path& folder) : folder_(folder) {
  const fs::path manifest_path = folder / "manifest.json";
  fs::path current = manifest_path;
  try {
    const nlohmann::json manifest = read_json(manifest_path);
    check_header(manifest, kManifestFormat, manifest_path);
    recipe_ = recipe_from_json(manifest.at("recipe"), manifest_path.string());
    format_ = read_frame_format(manifest, manifest_path);
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
      CU3D_CHECK(read_frame_format(index.at("key"), current) == format_,
                 "{}: stores its frames otherwise than the manifest says ({}); run prep again",
                 current.string(), frame_format_name(format_));
      MappedFile& bin = maps_.emplace_back(shard_bin(folder, name));
      CU3D_CHECK(get_integer<uint64_t>(index, "bytes", current.string()) == bin.size() &&
                     get_integer<uint64_t>(shard, "bytes", manifest_path.string()) == bin.size(),
                 "{}: the shard holds {} bytes but its index says {}; it is truncated or stale",
                 shard_bin(folder, name).string(), bin.size(), index.at("bytes").dump());
      for (const nlohmann::json& entry : index.at("videos")) {
        ShardVideo& video = videos_.emplace_back(
            read_index_entry(entry, bin, frame_bytes, format_, int(classes_.size()), current));
        video.shard = int(shard_names_.size());
      }
      shard_names_.push_back(name);
    }
  } catch (const nlohmann::json::exception& error) {
    throw Error(fmt::format("{}: malformed: {}", current.string(), error.what()));
  }
  CU3D_CHECK(!videos_.empty(), "{}: the shards hold no videos", folder.string());
}

FrameView ShardSet::frames(size_t i) const {
  CU3D_CHECK(format_ == FrameFormat::raw,
             "{}: the shards hold JPEG frames; read them with read_frame or read_video",
             folder_.string());
  const ShardVideo& video = videos_[i];
  return {video.frames, recipe_.resize_height, recipe_.resize_width, color_channels(recipe_.color),
          video.data};
}

void ShardSet::read_frame(size_t i, int t, uint8_t* out) const {
  const ShardVideo& video = videos_[i];
  CU3D_CHECK(t >= 0 && t < video.frames, "{}: frame {} of a {}-frame video", video.path, t,
             video.frames);
  const JpegFrameShape shape{recipe_.resize_height, recipe_.resize_width,
                             color_channels(recipe_.color), recipe_.color == ColorOrder::bgr};
  const size_t frame_bytes = size_t(shape.height) * shape.width * shape.channels;
  if (format_ == FrameFormat::raw) {
    std::memcpy(out, video.data + size_t(t) * frame_bytes, frame_bytes);
    return;
  }
  // The table was checked when the set was opened: [begin, end) lies inside the video.
  const uint64_t begin = get_le64(video.data, size_t(t)), end = get_le64(video.data, size_t(t) + 1);
  const std::string problem = decode_jpeg(video.data + begin, end - begin, shape, out);
  CU3D_CHECK(
      problem.empty(), "{}: {} frame {}: {}; the shard is damaged: delete it and run prep again",
      shard_bin(folder_, shard_names_[size_t(video.shard)]).string(), video.path, t, problem);
}

void ShardSet::read_video(size_t i, Clip& clip) const {
  clip.frames = videos_[i].frames;
  clip.height = recipe_.resize_height;
  clip.width = recipe_.resize_width;
  clip.channels = color_channels(recipe_.color);
  clip.pixels.resize(size_t(clip.frames) * clip.frame_bytes());
  for (int t = 0; t < clip.frames; ++t)
    read_frame(i, t, clip.frame(t));
}

std::vector<size_t> ShardSet::indices(Side side) const {
  std::vector<size_t> selected;
  for (size_t i = 0; i < videos_.size(); ++i)
    if (videos_[i].side == side) selected.push_back(i);
  return selected;
}

bool ShardSet::verify(size_t i) const {
  return fnv1a64(videos_[i].data, videos_[i].bytes) == videos_[i].checksum;
}

const char* frame_format_name(FrameFormat format) {
  return format == FrameFormat::jpeg ? "jpeg" : "raw";
}

FrameFormat parse_frame_format(const std::string& text, const std::string& where) {
  CU3D_CHECK(text == "raw" || text == "jpeg", "{}: frame format '{}' is neither raw nor jpeg",
             where, text);
  return text == "jpeg" ? FrameFormat::jpeg : FrameFormat::raw;
}

}  // namespace cu3d::data
