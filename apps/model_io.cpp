#include "apps/model_io.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/trainer.h"
#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/input.h"
#include "kernels/error.h"
#include "layers/models.h"

namespace cu3d::apps {
namespace {

// Frames between a 2D model's evaluation frames: 8 frames of a 32-frame video, enough to average
// out one unlucky frame while keeping evaluation as cheap as one 3D clip.
constexpr int kFrameStride = 4;

// Probabilities below this count as this in the loss, so a confident mistake costs ~27.6, not inf.
constexpr double kMinProbability = 1e-12;

}  // namespace

Checkpoint read_user_checkpoint(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) {
    for (const std::filesystem::path& inside : {best_checkpoint(path), last_checkpoint(path)})
      CU3D_CHECK(!std::filesystem::is_regular_file(inside), "{} is a run folder: pass {}",
                 path.string(), inside.string());
    throw Error(
        fmt::format("{} is a folder, not a checkpoint: pass a .safetensors file written "
                    "by cu3d train",
                    path.string()));
  }
  return read_checkpoint(path);
}

TrainedModel load_trained_model(const std::filesystem::path& path) {
  const Checkpoint checkpoint = read_user_checkpoint(path);
  const auto recipe = checkpoint.metadata.find(kRecipeKey);
  const auto classes = checkpoint.metadata.find(kClassesKey);
  CU3D_CHECK(recipe != checkpoint.metadata.end() && classes != checkpoint.metadata.end(),
             "{}: no '{}' and '{}' metadata; use a checkpoint written by cu3d train", path.string(),
             kRecipeKey, kClassesKey);
  TrainedModel m;
  m.spec = checkpoint.model;
  try {
    m.recipe = data::recipe_from_json(nlohmann::json::parse(recipe->second), path.string());
    m.classes = nlohmann::json::parse(classes->second).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: metadata '{}' or '{}' is malformed ({})", path.string(),
                            kRecipeKey, kClassesKey, e.what()));
  }
  CU3D_CHECK(int(m.classes.size()) == m.spec.num_classes,
             "{}: {} class names for a model of {} classes", path.string(), m.classes.size(),
             m.spec.num_classes);
  m.model = build_model(m.spec.config, m.spec.num_classes, m.spec.input);
  restore_checkpoint(checkpoint, *m.model);
  m.model->eval();
  return m;
}

Shape model_input_shape(const data::Recipe& recipe, int input_rank) {
  const auto [d, h, w, c] = data::clip_shape(recipe);
  if (input_rank == 3) return {h, w, c};
  return {d, h, w, c};
}

data::Recipe single_frame_recipe(data::Recipe recipe) {
  recipe.depth = 1;
  recipe.sampling = data::Sampling::window;
  recipe.stride = kFrameStride;
  recipe.aligned_train_start = false;
  data::check_recipe(recipe);
  return recipe;
}

Tensor clips_to_input(const uint8_t* clips, int64_t n, const data::Recipe& recipe,
                      const Shape& input) {
  const auto [d, h, w, c] = data::clip_shape(recipe);
  CU3D_CHECK(shape_numel(input) == int64_t(d) * h * w * c,
             "the model takes inputs of {} but recipe '{}' cuts clips of [{},{},{},{}]; choose a "
             "matching --depth/--color or model",
             shape_str(input), recipe.name, d, h, w, c);
  Shape shape{n};
  shape.insert(shape.end(), input.begin(), input.end());
  Tensor bytes = Tensor::empty({n, d, h, w, c}, DType::u8);
  std::copy_n(clips, bytes.numel(), bytes.data<uint8_t>());
  return normalize_clips(bytes, recipe.mean, recipe.scale).reshape(shape);
}

std::vector<float> class_probabilities(Module& model, const Tensor& input, int64_t classes) {
  autograd::NoGradGuard no_grad;
  const NamedTensors params = model.named_parameters();
  const Device device = params.empty() ? Device::cpu() : params.front().second.device();
  Tensor out = model(input.to(device));
  if (dynamic_cast<Ensemble*>(&model) == nullptr) out = softmax(out);
  CU3D_CHECK(out.dim() == 2 && out.size(1) == classes, "model output {} is not (clips, {} classes)",
             out.str(), classes);
  return out.to_vector<float>();
}

std::vector<int> top_k(const float* scores, int classes, int k) {
  std::vector<int> order(classes);
  std::iota(order.begin(), order.end(), 0);
  k = std::min(k, classes);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return scores[a] > scores[b]; });
  order.resize(k);
  return order;
}

namespace {

bool in_top(const float* scores, int classes, int k, int label) {
  const std::vector<int> top = top_k(scores, classes, k);
  return std::find(top.begin(), top.end(), label) != top.end();
}

// Each video was scored on one rank only (the others add zeros), so the summed scores are the
// single-process ones exactly; counts travel as doubles, exact up to 2^53.
void reduce_eval_sums(dist::Communicator& comm, double& loss, int64_t& hits1, int64_t& hits5,
                      int64_t& clips, std::vector<double>& video_scores,
                      std::vector<int64_t>& video_clips) {
  std::vector<double> sums = {loss, double(hits1), double(hits5), double(clips)};
  sums.insert(sums.end(), video_scores.begin(), video_scores.end());
  sums.insert(sums.end(), video_clips.begin(), video_clips.end());
  comm.all_reduce_sum(sums.data(), sums.size());
  loss = sums[0];
  hits1 = int64_t(sums[1]), hits5 = int64_t(sums[2]), clips = int64_t(sums[3]);
  std::copy_n(sums.begin() + 4, video_scores.size(), video_scores.begin());
  for (size_t v = 0; v < video_clips.size(); ++v)
    video_clips[v] = int64_t(sums[4 + video_scores.size() + v]);
}
}  // namespace

std::string top5_text(double top5, size_t classes) {
  return classes > 5 ? fmt::format("  top-5 {:.4f}", top5) : "";
}

EvalResult evaluate(Module& model, const data::ClipSource& source, const data::Recipe& recipe,
                    const Shape& input, int classes, int batch_size, int workers,
                    dist::Communicator* comm) {
  model.eval();
  data::Loader loader(source, recipe,
                      {.batch_size = batch_size,
                       .workers = workers,
                       .mode = data::Mode::eval,
                       .rank = comm != nullptr ? comm->rank() : 0,
                       .world = comm != nullptr ? comm->size() : 1});
  loader.start_epoch(0);
  EvalResult r;
  std::vector<double> video_scores(source.size() * classes, 0.0);
  std::vector<int64_t> video_clips(source.size(), 0);
  int64_t clip_hits1 = 0, clip_hits5 = 0;
  double loss = 0;
  while (auto batch = loader.next()) {
    const Tensor x = clips_to_input(batch->clips.data(), batch->size, recipe, input);
    const std::vector<float> p = class_probabilities(model, x, classes);
    for (int i = 0; i < batch->size; ++i) {
      const float* row = p.data() + size_t(i) * classes;
      const int label = batch->labels[i];
      loss -= std::log(std::max(double(row[label]), kMinProbability));
      clip_hits1 += in_top(row, classes, 1, label);
      clip_hits5 += in_top(row, classes, 5, label);
      const int32_t v = batch->videos[i];
      for (int c = 0; c < classes; ++c)
        video_scores[size_t(v) * classes + c] += row[c];
      ++video_clips[v];
    }
    r.clips += batch->size;
    loader.recycle(std::move(*batch));
  }
  if (comm != nullptr && comm->size() > 1)
    reduce_eval_sums(*comm, loss, clip_hits1, clip_hits5, r.clips, video_scores, video_clips);
  CU3D_CHECK(r.clips > 0, "evaluation found no readable clip among {} videos", source.size());
  r.loss = loss / double(r.clips);
  r.clip_top1 = double(clip_hits1) / double(r.clips);
  r.clip_top5 = double(clip_hits5) / double(r.clips);
  r.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  int64_t video_hits1 = 0, video_hits5 = 0;
  std::vector<float> averaged(classes);
  for (size_t v = 0; v < source.size(); ++v) {
    if (video_clips[v] == 0) continue;  // unreadable: warned about and counted by the source
    for (int c = 0; c < classes; ++c)
      averaged[c] = float(video_scores[v * classes + c] / double(video_clips[v]));
    const int label = source.label(v);
    const int predicted = top_k(averaged.data(), classes, 1)[0];
    ++r.confusion[label][predicted];
    video_hits1 += predicted == label;
    video_hits5 += in_top(averaged.data(), classes, 5, label);
    ++r.videos;
  }
  r.video_top1 = double(video_hits1) / double(r.videos);
  r.video_top5 = double(video_hits5) / double(r.videos);
  for (int c = 0; c < classes; ++c) {
    const int64_t total = std::accumulate(r.confusion[c].begin(), r.confusion[c].end(), int64_t{0});
    r.class_accuracy.push_back(total == 0 ? std::numeric_limits<double>::quiet_NaN()
                                          : double(r.confusion[c][c]) / double(total));
  }
  return r;
}

}  // namespace cu3d::apps
