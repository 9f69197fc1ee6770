// Running a model on the loader's batches: uint8 clips to the model's float input, class
// probabilities, and the evaluation pass (clip and video accuracy, top-1 and top-5, per class,
// confusion matrix) shared by `train`, `eval` and `predict`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/clip_source.h"
#include "data/loader.h"
#include "data/recipe.h"
#include "engine/dist/communicator.h"
#include "engine/tensor.h"
#include "layers/checkpoint.h"
#include "layers/module.h"

namespace cu3d::apps {

// Metadata keys a training checkpoint carries besides the model's own.
inline constexpr const char* kRecipeKey = "recipe";    // JSON, the recipe clips were cut with
inline constexpr const char* kClassesKey = "classes";  // JSON array of class names
inline constexpr const char* kStateKey = "training";   // JSON, the run's counters (trainer.cpp)

// read_checkpoint for a path the user gave: a run folder (or any folder) in its place is refused
// naming the checkpoint inside to pass instead.
Checkpoint read_user_checkpoint(const std::filesystem::path& path);

// A model rebuilt from a `cu3d train` checkpoint, with what it needs to cut clips as in training.
struct TrainedModel {
  std::shared_ptr<Module> model;
  ModelSpec spec;
  data::Recipe recipe;
  std::vector<std::string> classes;
};
// Throws cu3d::Error naming the file when it is not a cu3d train checkpoint.
TrainedModel load_trained_model(const std::filesystem::path& path);

// The per-sample input a model gets from a recipe's clips: (D, H, W, C), or (H, W, C) for a 2D
// model (input_rank 3), which sees single frames.
Shape model_input_shape(const data::Recipe& recipe, int input_rank);

// A 2D model sees one frame per clip: the recipe with depth 1, a random frame in training and
// every `kFrameStride`-th frame in evaluation (scores averaged per video).
data::Recipe single_frame_recipe(data::Recipe recipe);

// (pixel - mean[c]) * scale in f32 on the CPU, shaped (n, ...input): the engine's
// normalize_clips op, as the DeviceFeeder applies it in training. `input` is model_input_shape's.
Tensor clips_to_input(const uint8_t* clips, int64_t n, const data::Recipe& recipe,
                      const Shape& input);

// (n, classes) probabilities, without recording on the tape: a softmax over the logits, or an
// Ensemble's own averaged probabilities.
std::vector<float> class_probabilities(Module& model, const Tensor& input, int64_t classes);

// Row i's class indices ordered by decreasing score (first k).
std::vector<int> top_k(const float* scores, int classes, int k);

struct EvalResult {
  double loss = 0;  // mean clip cross-entropy of the probabilities
  double clip_top1 = 0, clip_top5 = 0;
  double video_top1 = 0, video_top5 = 0;
  int64_t clips = 0, videos = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted], videos
  std::vector<double> class_accuracy;           // video top-1 per class (NaN: no video)
};

// "  top-5 X" to print after a top-1 figure, or nothing where there are at most 5 classes: every
// clip's true class is then among its top 5, and the figure would only say so.
std::string top5_text(double top5, size_t classes);

// Every evaluation clip of `source` (the loader's eval mode), scores averaged per video. Puts the
// model in evaluation mode and leaves it so. With a communicator of several ranks each rank
// scores its share of the videos and the sums are reduced: every rank gets the single-process
// result.
EvalResult evaluate(Module& model, const data::ClipSource& source, const data::Recipe& recipe,
                    const Shape& input, int classes, int batch_size, int workers,
                    dist::Communicator* comm = nullptr);

}  // namespace cu3d::apps
