#include "data/clip_source.h"

#include <algorithm>

namespace cu3d::data {

ShardSource::ShardSource(const ShardSet& shards, Side side)
    : shards_(shards), indices_(shards.indices(side)) {}

std::optional<FrameView> ClipSource::planned_frames(size_t i, const Planner& plan_for,
                                                    ClipPlan& plan, Clip& scratch) const {
  const std::optional<FrameView> view = frames(i, scratch);
  if (view) plan = plan_for(view->frames);
  return view;
}

std::optional<FrameView> ShardSource::frames(size_t i, Clip& scratch) const {
  if (shards_.format() == FrameFormat::raw) return shards_.frames(indices_[i]);
  shards_.read_video(indices_[i], scratch);
  return scratch.view();
}

std::optional<FrameView> ShardSource::planned_frames(size_t i, const Planner& plan_for,
                                                     ClipPlan& plan, Clip& scratch) const {
  if (shards_.format() == FrameFormat::raw)
    return ClipSource::planned_frames(i, plan_for, plan, scratch);
  // JPEG: decode the clip's D frames only (a video has ~10x more), each distinct frame once, into
  // scratch slots 0..D-1, and point the plan at the slots.
  const size_t video = indices_[i];
  plan = plan_for(shards_.video(video).frames);
  const Recipe& recipe = shards_.recipe();
  scratch.height = recipe.resize_height;
  scratch.width = recipe.resize_width;
  scratch.channels = color_channels(recipe.color);
  scratch.frames = int(plan.frames.size());
  scratch.pixels.resize(plan.frames.size() * scratch.frame_bytes());
  const std::vector<int> wanted = plan.frames;
  for (size_t k = 0; k < wanted.size(); ++k) {
    // A frame wanted twice (a looped short video) is decoded into the slot of its first use.
    const size_t slot = size_t(std::find(wanted.begin(), wanted.end(), wanted[k]) - wanted.begin());
    if (slot == k) shards_.read_frame(video, wanted[k], scratch.frame(int(k)));
    plan.frames[k] = int(slot);
  }
  return scratch.view();
}

}  // namespace cu3d::data
