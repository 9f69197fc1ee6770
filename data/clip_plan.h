// Planning and cutting clips: the clip side of a recipe. A plan (frame indices, crop corner, flip)
// depends only on the recipe, the video's frame count and a seed, so a loader thread can plan any
// clip of any epoch without shared state, and the same seed gives the same clip on any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "data/clip.h"
#include "data/recipe.h"

namespace cu3d::data {

// Which frames, where, and whether mirrored: one clip of one video.
struct ClipPlan {
  std::vector<int> frames;  // indices into the video, all in [0, frame_count)
  int y = 0;
  int x = 0;
  bool flip = false;
  bool looped = false;  // the video was shorter than the recipe's depth
};

// One training clip of a video of `frame_count` frames, random from `seed` alone, so the same seed
// gives the same clip whatever thread plans it.
ClipPlan plan_train_clip(const Recipe& recipe, int frame_count, uint64_t seed);
// Every evaluation clip of the video (several for window sampling, one otherwise), centre crop.
std::vector<ClipPlan> plan_eval_clips(const Recipe& recipe, int frame_count);

// Cuts the planned clip from the video's frames into `out`, clip_shape(recipe) bytes. Throws
// cu3d::Error when the frames are not the recipe's decoded size or a planned frame is missing.
void cut_clip(const FrameView& video, const Recipe& recipe, const ClipPlan& plan, uint8_t* out);

}  // namespace cu3d::data
