#include <atomic>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "data/atomic_file.h"
#include "data/jpeg.h"
#include "data/shard.h"
#include "data/shard_format.h"
#include "engine/atomic_file.h"
#include "engine/checksum.h"
#include "kernels/error.h"

namespace cu3d::data {
namespace fs = std::filesystem;
namespace {

struct PlannedVideo {
  const VideoEntry* entry;
  Side side;
};

const char* side_name(Side side) {
  return side == Side::train ? "train" : "test";
}

// What identifies a shard's contents for resuming: the decode recipe, the planned sources and how
// the frames are stored.
nlohmann::json shard_key(const std::vector<PlannedVideo>& videos, const Recipe& recipe,
                         const PrepOptions& options) {
  nlohmann::json sources = nlohmann::json::array();
  for (const PlannedVideo& video : videos)
    sources.push_back({video.entry->path.string(), side_name(video.side)});
  nlohmann::json key = {{"recipe", decode_key(recipe)},
                        {"sources", sources},
                        {"frame_format", frame_format_name(options.format)}};
  if (options.format == FrameFormat::jpeg) key["jpeg_quality"] = options.jpeg_quality;
  return key;
}

// A video as a JPEG shard stores it: the frame table, then every frame's JPEG.
std::vector<uint8_t> encode_jpeg_video(const Clip& clip, const Recipe& recipe, int quality) {
  const JpegFrameShape shape{clip.height, clip.width, clip.channels,
                             recipe.color == ColorOrder::bgr};
  const size_t frames = size_t(clip.frames);
  std::vector<uint8_t> stored((frames + 1) * kFrameTableEntry);
  for (size_t t = 0; t < frames; ++t) {
    put_le64(stored.size(), stored.data() + t * kFrameTableEntry);
    const std::vector<uint8_t> jpeg =
        encode_jpeg(clip.pixels.data() + t * clip.frame_bytes(), shape, quality);
    stored.insert(stored.end(), jpeg.begin(), jpeg.end());
  }
  put_le64(stored.size(), stored.data() + frames * kFrameTableEntry);
  return stored;
}

// An index left by an earlier run, if it describes exactly these videos with this recipe and its
// .bin has the recorded size; anything else (absent, torn, stale) means the shard is redone.
std::optional<nlohmann::json> reusable_index(const fs::path& out, const std::string& name,
                                             const nlohmann::json& key) {
  const fs::path index_path = shard_index(out, name), bin_path = shard_bin(out, name);
  if (!fs::is_regular_file(index_path) || !fs::is_regular_file(bin_path)) return std::nullopt;
  std::ifstream in(index_path, std::ios::binary);
  nlohmann::json index = nlohmann::json::parse(in, nullptr, false);
  if (index.is_discarded() || !index.is_object() || index.value("key", nlohmann::json()) != key)
    return std::nullopt;
  const auto bytes = index.value("bytes", nlohmann::json());
  if (!bytes.is_number_unsigned() || bytes.get<uint64_t>() != fs::file_size(bin_path))
    return std::nullopt;
  return index;
}

void add_channel_sums(const Clip& clip, std::vector<double>& sums) {
  const size_t channels = size_t(clip.channels);
  std::vector<uint64_t> partial(channels, 0);  // exact integer sums, then one rounding
  for (size_t i = 0; i < clip.pixels.size(); i += channels)
    for (size_t c = 0; c < channels; ++c)
      partial[c] += clip.pixels[i + c];
  for (size_t c = 0; c < channels; ++c)
    sums[c] += double(partial[c]);
}

nlohmann::json write_shard(const fs::path& out, const std::string& name,
                           const std::vector<PlannedVideo>& videos, const Recipe& recipe,
                           const PrepOptions& options, const ClipDecoder& decode,
                           DecodeStats& stats) {
  const fs::path bin_path = shard_bin(out, name);
  std::ofstream bin(temporary_path(bin_path), std::ios::binary | std::ios::trunc);
  CU3D_CHECK(bin.good(), "{}: cannot create the shard file", temporary_path(bin_path).string());
  const int channels = color_channels(recipe.color);
  std::vector<double> sums(size_t(channels), 0.0);
  uint64_t offset = 0, train_pixels = 0, shard_checksum = kFnvOffsetBasis;
  nlohmann::json entries = nlohmann::json::array(), skipped = nlohmann::json::array();
  for (const PlannedVideo& video : videos) {
    const std::optional<Clip> clip = decode(video.entry->path, decode_options(recipe), stats);
    if (!clip) {
      skipped.push_back(video.entry->path.string());
      continue;
    }
    std::vector<uint8_t> encoded;
    if (options.format == FrameFormat::jpeg)
      encoded = encode_jpeg_video(*clip, recipe, options.jpeg_quality);
    const std::vector<uint8_t>& stored =
        options.format == FrameFormat::jpeg ? encoded : clip->pixels;
    const uint64_t bytes = stored.size();
    bin.write(reinterpret_cast<const char*>(stored.data()), std::streamsize(bytes));
    shard_checksum = fnv1a64(stored.data(), bytes, shard_checksum);
    if (video.side == Side::train) {
      add_channel_sums(*clip, sums);
      train_pixels += clip->pixels.size() / uint64_t(channels);
    }
    entries.push_back({{"path", video.entry->path.string()},
                       {"label", video.entry->label},
                       {"group", video.entry->group},
                       {"side", side_name(video.side)},
                       {"frames", clip->frames},
                       {"offset", offset},
                       {"bytes", bytes},
                       {"checksum", checksum_text(fnv1a64(stored.data(), bytes))}});
    offset += bytes;
  }
  bin.close();
  CU3D_CHECK(!bin.fail(), "{}: cannot write {} bytes (disk full?)",
             temporary_path(bin_path).string(), offset);
  commit_temporary(bin_path);
  const nlohmann::json index = {{"format", kIndexFormat},
                                {"version", kShardFormatVersion},
                                {"key", shard_key(videos, recipe, options)},
                                {"bytes", offset},
                                {"checksum", checksum_text(shard_checksum)},
                                {"videos", entries},
                                {"skipped", skipped},
                                {"train_channel_sums", sums},
                                {"train_pixels", train_pixels}};
  write_atomically(shard_index(out, name), index.dump(1));
  return index;
}

std::vector<PlannedVideo> planned_videos(const Dataset& dataset) {
  std::vector<PlannedVideo> videos;
  for (const VideoEntry& entry : dataset.train)
    videos.push_back({&entry, Side::train});
  for (const VideoEntry& entry : dataset.test)
    videos.push_back({&entry, Side::test});
  return videos;
}

// The training mean from every shard's channel sums (for mean_source "dataset").
std::vector<float> training_mean(const std::vector<nlohmann::json>& indexes, int channels) {
  std::vector<double> sums(size_t(channels), 0.0);
  double pixels = 0;
  for (const nlohmann::json& index : indexes) {
    const auto shard_sums = index.at("train_channel_sums").get<std::vector<double>>();
    for (size_t c = 0; c < sums.size(); ++c)
      sums[c] += shard_sums.at(c);
    pixels += index.at("train_pixels").get<double>();
  }
  std::vector<float> mean;
  for (double sum : sums)
    mean.push_back(pixels > 0 ? float(sum / pixels) : 0.0f);
  return mean;
}

Recipe recipe_with_mean(Recipe recipe, const std::vector<nlohmann::json>& indexes) {
  if (!recipe.mean.empty()) return recipe;
  if (recipe.mean_source == "dataset")
    recipe.mean = training_mean(indexes, color_channels(recipe.color));
  if (recipe.mean_source == "sports1m") recipe.mean = sports1m_mean(recipe.color);
  return recipe;
}

void write_manifest(const fs::path& out, const Dataset& dataset, const Recipe& recipe,
                    const PrepOptions& options, const std::vector<nlohmann::json>& indexes) {
  nlohmann::json shards = nlohmann::json::array(), skipped = nlohmann::json::array();
  size_t videos = 0;
  for (size_t k = 0; k < indexes.size(); ++k) {
    const nlohmann::json& index = indexes[k];
    shards.push_back({{"name", shard_name(int(k))},
                      {"bytes", index.at("bytes")},
                      {"checksum", index.at("checksum")},
                      {"videos", index.at("videos").size()}});
    videos += index.at("videos").size();
    for (const auto& path : index.at("skipped"))
      skipped.push_back(path);
  }
  nlohmann::json manifest = {{"format", kManifestFormat},
                             {"version", kShardFormatVersion},
                             {"recipe", recipe_to_json(recipe_with_mean(recipe, indexes))},
                             {"frame_format", frame_format_name(options.format)},
                             {"classes", dataset.classes},
                             {"split", dataset.split},
                             {"layout", layout_name(dataset.layout)},
                             {"root", dataset.root.string()},
                             {"videos", videos},
                             {"shards", shards},
                             {"skipped", skipped}};
  if (options.format == FrameFormat::jpeg) manifest["jpeg_quality"] = options.jpeg_quality;
  write_atomically(out / "manifest.json", manifest.dump(1));
}

// Runs body(k) for k in [0, count) on `threads` threads; rethrows the first failure after all
// threads have stopped taking work.
template <class Body>
void parallel_for(int count, int threads, Body body) {
  std::atomic<int> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const auto work = [&] {
    for (int k; (k = next++) < count;) {
      try {
        body(k);
      } catch (...) {
        const std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = count;
      }
    }
  };
  std::vector<std::jthread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  pool.clear();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

PrepReport prepare_shards(const Dataset& dataset, const Recipe& recipe, const fs::path& out,
                          const PrepOptions& options, const ClipDecoder& decode) {
  check_recipe(recipe);
  CU3D_CHECK(options.threads >= 1 && options.videos_per_shard >= 1,
             "prep: threads {} and videos_per_shard {} must be at least 1", options.threads,
             options.videos_per_shard);
  CU3D_CHECK(options.jpeg_quality >= 1 && options.jpeg_quality <= 100,
             "prep: JPEG quality {} must be in 1..100", options.jpeg_quality);
  const std::vector<PlannedVideo> videos = planned_videos(dataset);
  CU3D_CHECK(!videos.empty(), "prep: the dataset at {} has no videos", dataset.root.string());
  fs::create_directories(out);
  const int per_shard = options.videos_per_shard;
  const int shards = int((videos.size() + size_t(per_shard) - 1) / size_t(per_shard));
  std::vector<nlohmann::json> indexes(static_cast<size_t>(shards));
  std::atomic<int> written{0}, reused{0}, done{0};
  DecodeStats stats;
  parallel_for(shards, options.threads, [&](int k) {
    const auto first = videos.begin() + ptrdiff_t(k) * per_shard;
    const std::vector<PlannedVideo> part(
        first, first + std::min<ptrdiff_t>(per_shard, videos.end() - first));
    const std::string name = shard_name(k);
    if (auto index = reusable_index(out, name, shard_key(part, recipe, options))) {
      indexes[size_t(k)] = std::move(*index);
      ++reused;
    } else {
      indexes[size_t(k)] = write_shard(out, name, part, recipe, options, decode, stats);
      ++written;
    }
    if (options.progress) fmt::print(stderr, "prep: {}/{} shards\n", ++done, shards);
  });
  write_manifest(out, dataset, recipe, options, indexes);
  PrepReport report{0, 0, written.load(), reused.load()};
  for (const nlohmann::json& index : indexes) {
    report.videos += int64_t(index.at("videos").size());
    report.skipped += int64_t(index.at("skipped").size());
  }
  if (options.progress)
    fmt::print(stderr, "prep: {} videos in {} shards ({} reused), {} skipped\n", report.videos,
               shards, report.shards_reused, report.skipped);
  return report;
}

}  // namespace cu3d::data
