// `cu3d predict`: the top classes of one or more videos, with probabilities averaged over the
// recipe's evaluation clips (sliding windows for c3d, the one spaced clip for keras).
#include <memory>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/model_io.h"
#include "apps/subcommands.h"
#include "data/clip_plan.h"
#include "data/video.h"

namespace cu3d::apps {
namespace {

struct PredictFlags {
  std::string checkpoint;
  std::vector<std::string> videos;
  int top = 5;
  bool json = false;
};

struct Prediction {
  int clips = 0;
  std::vector<std::pair<int, float>> top;  // class, probability
};

Prediction predict_video(const TrainedModel& m, const std::string& video, int top) {
  const data::Clip frames = data::decode_video(video, data::decode_options(m.recipe));
  const std::vector<data::ClipPlan> plans = data::plan_eval_clips(m.recipe, frames.frames);
  const auto [d, h, w, c] = data::clip_shape(m.recipe);
  const size_t clip_bytes = size_t(d) * h * w * c;
  std::vector<uint8_t> clips(plans.size() * clip_bytes);
  for (size_t i = 0; i < plans.size(); ++i)
    data::cut_clip(frames.view(), m.recipe, plans[i], clips.data() + i * clip_bytes);
  const int classes = m.spec.num_classes;
  const Tensor x = clips_to_input(clips.data(), int64_t(plans.size()), m.recipe, m.spec.input);
  const std::vector<float> p = class_probabilities(*m.model, x, classes);
  std::vector<float> mean(classes, 0.f);
  for (size_t i = 0; i < plans.size(); ++i)
    for (int k = 0; k < classes; ++k)
      mean[k] += p[i * classes + k] / float(plans.size());
  Prediction out{int(plans.size()), {}};
  for (int k : top_k(mean.data(), classes, top))
    out.top.emplace_back(k, mean[k]);
  return out;
}

void run_predict(const PredictFlags& f) {
  CU3D_CHECK(f.top >= 1, "--top {} must be at least 1", f.top);
  const TrainedModel m = load_trained_model(f.checkpoint);
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& video : f.videos) {
    const Prediction p = predict_video(m, video, f.top);
    if (f.json) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [k, prob] : p.top)
        top.push_back({{"class", m.classes[k]}, {"index", k}, {"probability", prob}});
      all.push_back({{"video", video}, {"clips", p.clips}, {"top", top}});
      continue;
    }
    fmt::print("{} ({} clip{} averaged):\n", video, p.clips, p.clips == 1 ? "" : "s");
    for (const auto& [k, prob] : p.top)
      fmt::print("  {:6.2f}%  {}\n", 100 * prob, m.classes[k]);
  }
  if (f.json) fmt::print("{}\n", all.dump(2));
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto f = std::make_shared<PredictFlags>();
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify videos with a checkpoint from cu3d train: the top classes with probabilities "
      "averaged over the clips the model's recipe cuts from each video.\n"
      "Example: cu3d predict runs/k3d/checkpoint-best.safetensors clip.avi --json");
  cmd->add_option("checkpoint", f->checkpoint, "a .safetensors checkpoint written by cu3d train")
      ->required();
  cmd->add_option("videos", f->videos, "video files")->required();
  cmd->add_option("--top", f->top, "classes to list per video")->capture_default_str();
  cmd->add_flag("--json", f->json, "print JSON instead of text");
  cmd->callback([f] { run_predict(*f); });
}

}  // namespace cu3d::apps
