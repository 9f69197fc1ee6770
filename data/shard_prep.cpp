// prepare_shards from video files (data/shard.h): the shard writer with OpenCV's decoder. Apart
// from data/shard_writer.cpp so that a program writing shards from other frames does not link
// OpenCV.
#include "data/shard.h"
#include "data/video.h"

namespace cu3d::data {

PrepReport prepare_shards(const Dataset& dataset, const Recipe& recipe,
                          const std::filesystem::path& out, const PrepOptions& options) {
  return prepare_shards(dataset, recipe, out, options, try_decode_video);
}

}  // namespace cu3d::data
