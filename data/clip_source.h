// Where the loader finds a video's frames: mapped shards (no decoding, the fast path) or the video
// files themselves (decoded on every read; for datasets not worth a prep, and the benchmark).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "data/clip.h"
#include "data/clip_plan.h"
#include "data/dataset.h"
#include "data/recipe.h"
#include "data/shard.h"
#include "data/video.h"

namespace cu3d::data {

class ClipSource {
 public:
  virtual ~ClipSource() = default;
  virtual size_t size() const = 0;
  virtual int label(size_t i) const = 0;
  // The frame count before reading, to plan evaluation windows: exact for shards, the container's
  // declaration for videos (0 when unknown). Reads may still find a different count.
  virtual int frame_count(size_t i) const = 0;
  // Video i's frames at the recipe's decoded size; `scratch` owns them if they had to be decoded.
  // Nothing when the video is unreadable (already warned about and counted). Thread-safe.
  virtual std::optional<FrameView> frames(size_t i, Clip& scratch) const = 0;
  // What one clip of video i needs: `plan` is set to plan_for(the video's frame count), and the
  // returned view holds at least the planned frames, which `plan.frames` indexes (they may be
  // renumbered). By default every frame (frames()); a JPEG shard decodes only the planned ones.
  // Nothing when the video is unreadable. Thread-safe.
  using Planner = std::function<ClipPlan(int frame_count)>;
  virtual std::optional<FrameView> planned_frames(size_t i, const Planner& plan_for, ClipPlan& plan,
                                                  Clip& scratch) const;
  // Videos found unreadable so far (each warned about once), for the run's summary.
  virtual int64_t unreadable() const { return 0; }
};

// One side of a shard set.
class ShardSource : public ClipSource {
 public:
  ShardSource(const ShardSet& shards, Side side);
  size_t size() const override { return indices_.size(); }
  int label(size_t i) const override { return shards_.video(indices_[i]).label; }
  int frame_count(size_t i) const override { return shards_.video(indices_[i]).frames; }
  std::optional<FrameView> frames(size_t i, Clip& scratch) const override;
  std::optional<FrameView> planned_frames(size_t i, const Planner& plan_for, ClipPlan& plan,
                                          Clip& scratch) const override;

 private:
  const ShardSet& shards_;
  std::vector<size_t> indices_;
};

// Video files decoded with the recipe's decode options on each read. A video that fails once is
// not tried again: one warning per bad file, not one per epoch.
class VideoSource : public ClipSource {
 public:
  VideoSource(std::vector<VideoEntry> videos, const Recipe& recipe);
  size_t size() const override { return videos_.size(); }
  int label(size_t i) const override { return videos_[i].label; }
  int frame_count(size_t i) const override;
  std::optional<FrameView> frames(size_t i, Clip& scratch) const override;
  int64_t unreadable() const override { return stats_.skipped.load(); }
  const DecodeStats& stats() const { return stats_; }

 private:
  std::vector<VideoEntry> videos_;
  DecodeOptions decode_;
  mutable DecodeStats stats_;
  mutable std::vector<std::atomic<bool>> failed_;  // per video
};

}  // namespace cu3d::data
