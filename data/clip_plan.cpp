#include "data/clip_plan.h"

#include <cstring>

#include "data/random.h"
#include "kernels/error.h"

namespace cu3d::data {
namespace {

// `depth` frames from `start`, wrapping to the video's start when it runs out (short videos loop).
std::vector<int> window_frames(int start, int depth, int frame_count) {
  std::vector<int> frames;
  for (int i = 0; i < depth; ++i)
    frames.push_back((start + i) % frame_count);
  return frames;
}

// floor(i * frame_count / depth): the Keras tool's spacing (frames repeat when the video is short).
std::vector<int> spaced_frames(int depth, int frame_count) {
  std::vector<int> frames;
  for (int i = 0; i < depth; ++i)
    frames.push_back(int(int64_t(i) * frame_count / depth));
  return frames;
}

int random_train_start(const Recipe& recipe, int frame_count, SeededRandom& random) {
  const int last = frame_count - recipe.depth;
  if (last <= 0) return 0;
  if (!recipe.aligned_train_start) return int(random.below(uint64_t(last) + 1));
  return recipe.stride * int(random.below(uint64_t(last / recipe.stride) + 1));
}

void centre_or_fixed_crop(const Recipe& recipe, ClipPlan& plan) {
  if (recipe.crop == CropKind::fixed) {
    plan.y = recipe.crop_y;
    plan.x = recipe.crop_x;
  } else {
    plan.y = (recipe.resize_height - recipe.crop_height) / 2;
    plan.x = (recipe.resize_width - recipe.crop_width) / 2;
  }
}

void check_frame_count(int frame_count) {
  CU3D_CHECK(frame_count >= 1, "cannot plan a clip of a video with {} frames", frame_count);
}

// Copies one row of `width` pixels of `channels` bytes, mirrored left to right.
void copy_row_flipped(const uint8_t* in, int width, int channels, uint8_t* out) {
  for (int x = 0; x < width; ++x)
    std::memcpy(out + size_t(x) * channels, in + size_t(width - 1 - x) * channels,
                size_t(channels));
}

}  // namespace

ClipPlan plan_train_clip(const Recipe& recipe, int frame_count, uint64_t seed) {
  check_frame_count(frame_count);
  SeededRandom random(seed);
  ClipPlan plan;
  plan.looped = frame_count < recipe.depth;
  switch (recipe.sampling) {
    case Sampling::window:
      plan.frames =
          window_frames(random_train_start(recipe, frame_count, random), recipe.depth, frame_count);
      break;
    case Sampling::spaced:
      plan.frames = spaced_frames(recipe.depth, frame_count);
      break;
    case Sampling::first:
      plan.frames = window_frames(0, recipe.depth, frame_count);
      break;
  }
  if (recipe.crop == CropKind::random) {
    plan.y = int(random.below(uint64_t(recipe.resize_height - recipe.crop_height) + 1));
    plan.x = int(random.below(uint64_t(recipe.resize_width - recipe.crop_width) + 1));
  } else {
    centre_or_fixed_crop(recipe, plan);
  }
  plan.flip = recipe.flip && (random.next() & 1);
  return plan;
}

std::vector<ClipPlan> plan_eval_clips(const Recipe& recipe, int frame_count) {
  check_frame_count(frame_count);
  ClipPlan centre;
  centre.looped = frame_count < recipe.depth;
  centre_or_fixed_crop(recipe, centre);
  std::vector<ClipPlan> plans;
  if (recipe.sampling != Sampling::window) {
    centre.frames = recipe.sampling == Sampling::spaced
                        ? spaced_frames(recipe.depth, frame_count)
                        : window_frames(0, recipe.depth, frame_count);
    plans.push_back(std::move(centre));
    return plans;
  }
  // Windows that fit; a video shorter than one window gives one looped window.
  const int last = std::max(0, frame_count - recipe.depth);
  for (int start = 0; start <= last; start += recipe.stride) {
    ClipPlan plan = centre;
    plan.frames = window_frames(start, recipe.depth, frame_count);
    plans.push_back(std::move(plan));
  }
  return plans;
}

void cut_clip(const FrameView& video, const Recipe& recipe, const ClipPlan& plan, uint8_t* out) {
  const int channels = color_channels(recipe.color);
  CU3D_CHECK(video.height == recipe.resize_height && video.width == recipe.resize_width &&
                 video.channels == channels,
             "recipe '{}' expects {}x{}x{} frames, got {}x{}x{}; prepare the data with this recipe",
             recipe.name, recipe.resize_height, recipe.resize_width, channels, video.height,
             video.width, video.channels);
  CU3D_CHECK(int(plan.frames.size()) == recipe.depth && plan.y >= 0 && plan.x >= 0 &&
                 plan.y + recipe.crop_height <= video.height &&
                 plan.x + recipe.crop_width <= video.width,
             "clip plan does not fit recipe '{}'", recipe.name);
  const size_t row_bytes = size_t(recipe.crop_width) * channels;
  const size_t frame_stride = size_t(video.width) * channels;
  for (int t : plan.frames) {
    CU3D_CHECK(t >= 0 && t < video.frames, "clip plan asks for frame {} of a {}-frame video", t,
               video.frames);
    const uint8_t* row = video.frame(t) + plan.y * frame_stride + size_t(plan.x) * channels;
    for (int y = 0; y < recipe.crop_height; ++y, row += frame_stride, out += row_bytes) {
      if (plan.flip)
        copy_row_flipped(row, recipe.crop_width, channels, out);
      else
        std::memcpy(out, row, row_bytes);
    }
  }
}

}  // namespace cu3d::data
