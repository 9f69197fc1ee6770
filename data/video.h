// Video decoding with OpenCV's FFmpeg backend into (T,H,W,C) uint8 frames. A dataset of
// thousands of user videos always holds a few broken ones, so besides the throwing decoder there
// is one that warns once per bad file, counts it and lets the caller go on.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "data/clip.h"
#include "data/color_order.h"

namespace cu3d::data {

struct DecodeOptions {
  ColorOrder color = ColorOrder::rgb;
  int height = 0;  // every frame resized to height x width; 0 keeps the first frame's size
  int width = 0;
  int max_frames = 0;  // stop after this many frames; 0 decodes the whole video
  // A video whose decoding takes longer is refused (checked between frames, and by FFmpeg on a
  // stalled open or read). UCF101's videos take well under a second each.
  double time_limit_seconds = 300;
};

// Decodes the video's frames. Throws cu3d::Error naming the file when it is missing or no regular
// file, cannot be opened, declares or holds frames above 8192 pixels a side or more than 108000
// frames, runs past the time limit, or yields no frame.
Clip decode_video(const std::filesystem::path& path, const DecodeOptions& options);

// The frame count the container declares, without decoding; 0 when it declares none. Only a hint:
// some containers lie, so decoders never trust it for memory or indexing.
int declared_frame_count(const std::filesystem::path& path);

// Counters shared by every thread that decodes one dataset (training from a video folder reports
// `skipped` at the end: VideoSource::unreadable; the loader counts looped short videos itself).
struct DecodeStats {
  std::atomic<int64_t> decoded{0};
  std::atomic<int64_t> skipped{0};  // unreadable or empty videos
};

// decode_video that does not throw for a bad video: prints one warning line naming the file and
// the reason, counts it in stats.skipped and returns nothing.
std::optional<Clip> try_decode_video(const std::filesystem::path& path,
                                     const DecodeOptions& options, DecodeStats& stats);

}  // namespace cu3d::data
