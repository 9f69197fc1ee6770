// VideoSource (data/clip_source.h): clips decoded from the video files at every read. A file of
// its own, apart from ShardSource, so that a program reading only shards does not link OpenCV.
#include "data/clip_source.h"

namespace cu3d::data {

VideoSource::VideoSource(std::vector<VideoEntry> videos, const Recipe& recipe)
    : videos_(std::move(videos)), decode_(decode_options(recipe)), failed_(videos_.size()) {}

int VideoSource::frame_count(size_t i) const {
  return declared_frame_count(videos_[i].path);
}

std::optional<FrameView> VideoSource::frames(size_t i, Clip& scratch) const {
  if (failed_[i].load()) return std::nullopt;
  std::optional<Clip> clip = try_decode_video(videos_[i].path, decode_, stats_);
  if (!clip) {
    failed_[i].store(true);
    return std::nullopt;
  }
  scratch = std::move(*clip);
  return scratch.view();
}

}  // namespace cu3d::data
