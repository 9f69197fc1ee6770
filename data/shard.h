// Prepared shards: every video decoded once, resized by its recipe, and stored as raw uint8
// frames or as JPEG frames, so training reads clips at memory speed (raw) or at the cost of a
// small JPEG decode per frame (a sixth of the bytes) instead of decoding video every epoch (what
// the TensorFlow C3D did with TFRecords). A shard folder holds
//   shard-NNNNN.bin   the frames of up to videos_per_shard videos, back to back: raw, each video
//                     its (T,H,W,C) uint8 frames; jpeg, each video a table of T+1 little-endian
//                     uint64 offsets (from the video's start) followed by its T JPEG frames;
//   shard-NNNNN.json  its index: per video the source path, label, group, side (train/test),
//                     frame count, byte offset and size, FNV-1a checksum; per shard the bytes,
//                     channel sums of its training frames, the videos it skipped;
//   manifest.json     the recipe (with the training mean filled in), classes, split, layout,
//                     source root, and every shard's name, bytes and checksum.
// docs/DATA.md describes the fields. Every file is written to a temporary name and renamed, the
// index only after its .bin, and the manifest last: a shard with a valid index is complete, so an
// interrupted prep resumes by skipping those shards, and a reader never sees half a shard.
// Reading treats every file as hostile: each size and offset is checked against the file length.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/clip.h"
#include "data/dataset.h"
#include "data/mapped_file.h"
#include "data/recipe.h"

namespace cu3d::data {

enum class Side { train, test };

// How a shard stores its frames.
enum class FrameFormat { raw, jpeg };
const char* frame_format_name(FrameFormat format);
// "raw" or "jpeg"; throws cu3d::Error naming `where` for anything else.
FrameFormat parse_frame_format(const std::string& text, const std::string& where);

struct PrepOptions {
  int threads = 2;            // shards are decoded in parallel, one per thread at a time
  int videos_per_shard = 64;  // ~64 x 300 frames x 64 KiB = 1.2 GiB for c3d on UCF101 (raw)
  bool progress = true;       // one stderr line per finished shard
  FrameFormat format = FrameFormat::raw;
  int jpeg_quality = 95;  // 1..100, for FrameFormat::jpeg
};

struct PrepReport {
  int64_t videos = 0;   // stored in the shards
  int64_t skipped = 0;  // unreadable or empty, warned about once each
  int shards_written = 0;
  int shards_reused = 0;  // complete from an earlier, interrupted run
};

// Decodes the dataset's train and test videos with the recipe into shards under `out`. Resumes an
// interrupted run. The recipe's mean is filled from the training frames when its mean_source is
// "dataset" (or from Sports-1M for "sports1m"). Throws cu3d::Error when `out` cannot be written.
// The videos are decoded with try_decode_video (data/video.h, OpenCV; data/shard_prep.cpp).
PrepReport prepare_shards(const Dataset& dataset, const Recipe& recipe,
                          const std::filesystem::path& out, const PrepOptions& options = {});

// What prepare_shards decodes each video with: its frames as the options ask, or nothing for a
// video it cannot read (counted in stats.skipped).
using ClipDecoder = std::function<std::optional<Clip>(const std::filesystem::path&,
                                                      const DecodeOptions&, DecodeStats&)>;

// prepare_shards with another decoder: a test's synthetic frames, without OpenCV (this one is in
// data/shard_writer.cpp, which does not link the video decoder).
PrepReport prepare_shards(const Dataset& dataset, const Recipe& recipe,
                          const std::filesystem::path& out, const PrepOptions& options,
                          const ClipDecoder& decode);

struct ShardVideo {
  std::string path;  // the source video
  int label = 0;
  std::string group;
  Side side = Side::train;
  int frames = 0;
  uint64_t checksum = 0;          // FNV-1a 64 of the stored bytes
  const uint8_t* data = nullptr;  // the stored bytes, in the mapped shard
  uint64_t bytes = 0;
  int shard = 0;  // which shard-NNNNN holds it
};

// A read-only view of a shard folder; safe to share between threads.
class ShardSet {
 public:
  // Reads and validates the manifest and every index, and maps every shard. Throws cu3d::Error
  // naming the file and field for anything missing, malformed or out of bounds.
  explicit ShardSet(const std::filesystem::path& folder);

  const Recipe& recipe() const { return recipe_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& split() const { return split_; }
  FrameFormat format() const { return format_; }
  size_t size() const { return videos_.size(); }
  const ShardVideo& video(size_t i) const { return videos_[i]; }
  // Video i's frames in place; raw shards only (throws cu3d::Error for JPEG shards).
  FrameView frames(size_t i) const;
  // Frame t of video i into `out` (H*W*C bytes at the recipe's decoded size): a copy from a raw
  // shard, a decode from a JPEG one. Throws cu3d::Error naming the shard, the video and the frame
  // when a JPEG frame is corrupt. Thread-safe.
  void read_frame(size_t i, int t, uint8_t* out) const;
  // All of video i's frames into `clip` (its buffer reused).
  void read_video(size_t i, Clip& clip) const;
  // The videos of one side, in stored order.
  std::vector<size_t> indices(Side side) const;
  // Recomputes video i's checksum against its index.
  bool verify(size_t i) const;

 private:
  Recipe recipe_;
  std::vector<std::string> classes_;
  std::string split_;
  FrameFormat format_ = FrameFormat::raw;
  std::filesystem::path folder_;
  std::vector<std::string> shard_names_;
  std::vector<MappedFile> maps_;
  std::vector<ShardVideo> videos_;
};

}  // namespace cu3d::data
