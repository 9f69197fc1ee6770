// The synthetic motion dataset: real video files in the UCF101 layout whose class is a motion, so
// that a model must use time. Every clip draws one irregular polygon (so rotation shows) on a
// plain background with a static distractor disc and per-frame noise; the class says how the
// polygon moves. Every frame of every class, at any time in the clip, is drawn from the same
// distribution: the polygon at a uniform position on the torus (it wraps across the frame's
// edges), with a log-uniform radius and a uniform angle; moves, turns and size changes (which
// wrap in log radius) keep it so. A single frame therefore cannot tell the class.
//
// Clips of one group share their background, colours and shape (as the clips UCF101 cut from one
// recording share actor and scene); only motion speed, size and position vary inside a group. A
// clip-level split therefore leaks scene identity between train and test, as it does on UCF101.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace cu3d::data {

enum class Motion {
  move_left,
  move_right,
  move_up,
  move_down,
  rotate_cw,
  rotate_ccw,
  grow,
  shrink
};
constexpr int kSynthMotions = 8;

// The default is sized to train on a 2-core CPU in a few minutes: 8 classes x 10 groups x 3 clips
// = 240 videos (168 train / 72 test for split 1) of 32 frames at 64x64. With the keras recipe (10
// frames of 32x32 gray, every third frame) one epoch is 168 clips of 10K input values, small
// enough for a 2-conv 3D CNN to take many epochs in a few minutes. Chance is 12.5%.
struct SynthOptions {
  int classes = kSynthMotions;  // the first N motions, in Motion order
  int groups = 10;              // 2..99; official-style splits hold ~30% of the groups out
  int clips_per_group = 3;      // 1..99
  int frames = 32;
  int height = 64;
  int width = 64;
  double fps = 25;
  uint64_t seed = 1;
};

// Everything random about one clip, drawn deterministically from (seed, class, group, clip).
struct SynthClip {
  Motion motion = Motion::move_left;
  int frames = 0, height = 0, width = 0;
  cv::Scalar background, foreground, distractor;  // BGR
  std::vector<cv::Point2d> shape;                 // polygon around the origin, radius <= 1
  cv::Point2d start, velocity;    // centre in pixels (wraps around the frame), pixels per frame
  double radius = 0, growth = 1;  // radius in pixels at t = 0, factor per frame
  double min_radius = 0, max_radius = 0;  // the radius wraps into this range (log space)
  double angle = 0, spin = 0;             // radians, radians per frame
  cv::Point2d distractor_centre;
  double distractor_radius = 0;
  double noise_sigma = 0;
  uint64_t noise_seed = 0;
};

std::string synth_class_name(Motion motion);

// The parameters of clip `clip` (1-based) of group `group` (1-based) of class `class_index`.
SynthClip synth_clip(const SynthOptions& options, int class_index, int group, int clip);

// Frame t of the clip, BGR uint8, exactly what the writer hands to the MJPG encoder.
cv::Mat draw_synth_frame(const SynthClip& clip, int t);

// Writes <root>/<Class>/v_<Class>_g<GG>_c<CC>.avi (MJPG) and <root>/ucfTrainTestlist/ with
// classInd.txt and trainlist0K.txt/testlist0K.txt for up to three official-style splits (split K
// tests the K-th block of ~30% of the groups). Deterministic for a seed. Throws cu3d::Error for
// options out of range or a video the writer cannot create.
void write_synth_dataset(const std::filesystem::path& root, const SynthOptions& options);

}  // namespace cu3d::data
