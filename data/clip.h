// Frames and clips as plain uint8 buffers in channels-last order. A decoded video is a stack of
// frames (T,H,W,C); a clip cut from it by a recipe is (D,H,W,C). Both are the same struct, so the
// decoder, the recipes, the shards and the loader share one type without copying through tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cu3d::data {

// A borrowed (T,H,W,C) uint8 stack: frames of a decoded video, or of a memory-mapped shard.
struct FrameView {
  int frames = 0;
  int height = 0;
  int width = 0;
  int channels = 0;
  const uint8_t* pixels = nullptr;

  size_t frame_bytes() const { return size_t(height) * width * channels; }
  const uint8_t* frame(int t) const { return pixels + size_t(t) * frame_bytes(); }
};

// An owned (T,H,W,C) uint8 stack.
struct Clip {
  int frames = 0;
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;

  size_t frame_bytes() const { return size_t(height) * width * channels; }
  uint8_t* frame(int t) { return pixels.data() + size_t(t) * frame_bytes(); }
  FrameView view() const { return {frames, height, width, channels, pixels.data()}; }
};

}  // namespace cu3d::data
