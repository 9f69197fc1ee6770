// A dataset that exists only in memory and a decoder that makes up its frames: shards for tests
// without video files, so without OpenCV (prepare_shards with a ClipDecoder, data/shard.h). The
// DeviceFeeder's GPU test uses it on machines whose image has no OpenCV.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "data/dataset.h"
#include "data/video.h"

namespace cu3d::data::testing {

// `train` and `test` videos of each of `classes` classes, each video its own group.
inline Dataset in_memory_dataset(int classes, int train, int test) {
  Dataset dataset;
  dataset.root = "in-memory";
  dataset.split = "made by the test";
  for (int c = 0; c < classes; ++c) {
    dataset.classes.push_back(fmt::format("class{}", c));
    for (int v = 0; v < train + test; ++v) {
      const std::string name = fmt::format("c{}_v{}", c, v);
      (v < train ? dataset.train : dataset.test).push_back({name + ".avi", c, name});
    }
  }
  return dataset;
}

// 12 frames of the asked size (32 x 40 where unset) and colour, their bytes a function of the
// path, the frame and the position: the same video always decodes to the same frames.
inline std::optional<Clip> synthetic_frames(const std::filesystem::path& path,
                                            const DecodeOptions& options, DecodeStats& stats) {
  Clip clip;
  clip.frames = 12;
  clip.height = options.height > 0 ? options.height : 32;
  clip.width = options.width > 0 ? options.width : 40;
  clip.channels = color_channels(options.color);
  clip.pixels.resize(size_t(clip.frames) * clip.frame_bytes());
  const size_t seed = std::hash<std::string>()(path.string());
  for (size_t i = 0; i < clip.pixels.size(); ++i)
    clip.pixels[i] = uint8_t((seed >> (i % 7)) + i * 31 + (i / clip.frame_bytes()) * 17);
  ++stats.decoded;
  return clip;
}

}  // namespace cu3d::data::testing
