// Clip recipes: how a decoded video becomes the (D,H,W,C) uint8 clips a model sees. A recipe is
// named, its parameters are plain data serialized to JSON (checkpoints and shard manifests carry
// it, so prediction cuts clips exactly as training did), and its work is split in two halves:
//   decode side - frames resized to resize_height x resize_width in `color` order (what shards
//                 store, once per video);
//   clip side   - temporal sampling (a window, evenly spaced frames or the first ones), a crop and
//                 a flip, planned from a seed and cut from the frames by the loader threads.
// Normalization is neither: the loader hands uint8 clips to the device, whose normalize kernel
// (or the CPU normalize op) computes (pixel - mean[c]) * scale in float. Keeping uint8 up to the
// device moves 4x fewer bytes over PCIe; `mean` and `scale` are recorded here for that step.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/clip.h"
#include "data/video.h"

namespace cu3d::data {

enum class Mode { train, eval };

enum class Sampling {
  window,  // `depth` consecutive frames; training picks a random start, evaluation every `stride`
  spaced,  // `depth` frames evenly spread over the whole video (the Keras tool's `skip`)
  first,   // the first `depth` frames
};

enum class CropKind {
  none,    // the resized frame is the clip frame
  random,  // a random crop (and flip) in training, the centre crop in evaluation
  fixed,   // always at (crop_y, crop_x)
};

struct Recipe {
  std::string name;
  int depth = 16;
  int resize_height = 128;
  int resize_width = 171;
  int crop_height = 112;
  int crop_width = 112;
  CropKind crop = CropKind::random;
  int crop_y = 0;  // CropKind::fixed only
  int crop_x = 0;
  bool flip = true;  // random horizontal flip in training
  ColorOrder color = ColorOrder::rgb;
  Sampling sampling = Sampling::window;
  int stride = 8;                    // evaluation windows start every `stride` frames
  bool aligned_train_start = false;  // training windows also start at multiples of `stride`
  std::vector<float> mean;           // per channel, in `color` order; empty means zero
  std::string mean_source;           // "dataset": prep fills `mean` from the training split;
                                     // "sports1m": kSports1mMeanBgr; "": no mean
  float scale = 1;                   // applied after the mean: (pixel - mean) * scale
};

// The Sports-1M mean of the Caffe C3D release, in BGR order, for imported weights.
constexpr std::array<float, 3> kSports1mMeanBgr = {90.25f, 97.66f, 101.41f};

// c3d: 16 consecutive frames, resized to 128x171, random 112x112 crop + flip in training, centre
// crop in evaluation over windows of stride 8; mean filled from the training split at prep (the
// Caffe release subtracted its training mean too).
Recipe c3d_recipe();
// keras: `depth` frames (the tool's default 10) evenly spaced (skip) or the first ones, 32x32,
// gray unless `color`, scaled to [0, 1]. Frames stay in time order with channels last (the original
// tool's reshape of (N,D,H,W,C) data as (N,H,W,D,C) scrambled colour and time; here nothing is
// reshaped).
Recipe keras_recipe(int depth = 10, bool skip = true, bool color = false);
// tf-c3d: the TensorFlow seed's 160x120 frames cropped at rows 4..116 and columns 24..136, 16-frame
// windows of stride 8 (training starts on the same grid).
Recipe tf_c3d_recipe();
// "c3d", "keras" or "tf-c3d" with default parameters; throws cu3d::Error for other names.
Recipe recipe_by_name(std::string_view name);

// Throws cu3d::Error naming the field when a parameter is out of range or inconsistent.
void check_recipe(const Recipe& recipe);
nlohmann::json recipe_to_json(const Recipe& recipe);
// Reads and checks a recipe from untrusted JSON; `source` names the file in errors.
Recipe recipe_from_json(const nlohmann::json& json, const std::string& source);

// The clip shape (D, H, W, C) a recipe produces.
std::array<int, 4> clip_shape(const Recipe& recipe);
// What the decoder must produce for this recipe (and what its shards store).
DecodeOptions decode_options(const Recipe& recipe);
// The mean of `color`-ordered channels from the Sports-1M BGR mean; for gray, its luma.
std::vector<float> sports1m_mean(ColorOrder color);

}  // namespace cu3d::data
