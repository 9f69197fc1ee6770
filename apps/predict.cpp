// `cu3d predict`: the top classes of one or more videos, with probabilities averaged over the
// recipe's evaluation clips (sliding windows for c3d, the one spaced clip for keras), and
// optionally the video with the predicted label drawn on each frame.
#include <algorithm>
#include <filesystem>
#include <memory>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "apps/compute_flags.h"
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
  std::string annotate;
  std::string device = "cpu";
};

struct Prediction {
  std::vector<data::ClipPlan> plans;
  std::vector<float> clip_probabilities;  // (clips, classes)
  std::vector<float> mean;                // (classes), averaged over the clips
};

Prediction predict_video(const TrainedModel& m, const std::string& video) {
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
  return {plans, p, mean};
}

// The class drawn on frame t: the top class of the clips whose frames span t, or of the whole
// video for frames no clip spans (the tail after the last window).
int frame_class(const Prediction& p, int t, int classes) {
  std::vector<float> sum(classes, 0.f);
  int covering = 0;
  for (size_t i = 0; i < p.plans.size(); ++i) {
    const std::vector<int>& f = p.plans[i].frames;
    if (t < *std::min_element(f.begin(), f.end()) || t > *std::max_element(f.begin(), f.end()))
      continue;
    for (int k = 0; k < classes; ++k)
      sum[k] += p.clip_probabilities[i * classes + k];
    ++covering;
  }
  return top_k(covering > 0 ? sum.data() : p.mean.data(), classes, 1)[0];
}

// Writes the video at its own size with the predicted label drawn on every frame (as the
// TensorFlow tool's annotated output). The container follows the extension: .mp4 (MPEG-4 Part 2)
// or .avi (MJPG).
void write_annotated(const std::string& video, const std::filesystem::path& out,
                     const TrainedModel& m, const Prediction& p) {
  const bool mp4 = out.extension() == ".mp4";
  CU3D_CHECK(mp4 || out.extension() == ".avi", "--annotate {}: use a .mp4 or .avi file name",
             out.string());
  const data::Clip frames = data::decode_video(video, {.color = data::ColorOrder::bgr});
  const std::filesystem::path partial =
      out.parent_path() / (out.stem().string() + ".tmp" + out.extension().string());
  {
    const double fps = cv::VideoCapture(video).get(cv::CAP_PROP_FPS);
    cv::VideoWriter writer(partial.string(), cv::CAP_FFMPEG,
                           mp4 ? cv::VideoWriter::fourcc('m', 'p', '4', 'v')
                               : cv::VideoWriter::fourcc('M', 'J', 'P', 'G'),
                           fps > 0 ? fps : 25, cv::Size(frames.width, frames.height), true);
    CU3D_CHECK(writer.isOpened(), "--annotate {}: OpenCV cannot open a video writer for it",
               partial.string());
    // Text about 1/12 of the frame high: readable from 64-pixel synthetic clips to full HD.
    const double scale = std::max(0.25, frames.height / 300.0);
    const cv::Point at(4, int(24 * scale) + 2);
    for (int t = 0; t < frames.frames; ++t) {
      const cv::Mat frame(frames.height, frames.width, CV_8UC3,
                          const_cast<uint8_t*>(frames.view().frame(t)));
      const int k = frame_class(p, t, m.spec.num_classes);
      const std::string label = fmt::format("{} {:.0f}%", m.classes[k], 100 * p.mean[k]);
      cv::Mat annotated = frame.clone();
      cv::putText(annotated, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 3,
                  cv::LINE_AA);
      cv::putText(annotated, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255),
                  1, cv::LINE_AA);
      writer.write(annotated);
    }
  }
  std::filesystem::rename(partial, out);
}

void run_predict(const PredictFlags& f) {
  CU3D_CHECK(f.top >= 1, "--top {} must be at least 1", f.top);
  CU3D_CHECK(f.annotate.empty() || f.videos.size() == 1,
             "--annotate writes one video; give one input video (got {})", f.videos.size());
  const Device device = parse_device_flag(f.device, "predict");
  const TrainedModel m = load_trained_model(f.checkpoint);
  m.model->to(device);
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& video : f.videos) {
    const Prediction p = predict_video(m, video);
    const std::vector<int> top = top_k(p.mean.data(), m.spec.num_classes, f.top);
    const size_t clips = p.plans.size();
    if (!f.annotate.empty()) write_annotated(video, f.annotate, m, p);
    if (f.json) {
      nlohmann::json entries = nlohmann::json::array();
      for (int k : top)
        entries.push_back({{"class", m.classes[k]}, {"index", k}, {"probability", p.mean[k]}});
      all.push_back({{"video", video}, {"clips", clips}, {"top", entries}});
      continue;
    }
    fmt::print("{} ({} clip{} averaged):\n", video, clips, clips == 1 ? "" : "s");
    for (int k : top)
      fmt::print("  {:6.2f}%  {}\n", 100 * p.mean[k], m.classes[k]);
    if (!f.annotate.empty()) fmt::print("annotated video: {}\n", f.annotate);
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
  cmd->add_option("--annotate", f->annotate,
                  "write the video (.mp4 or .avi) with the predicted class drawn on each frame");
  add_device_flag(*cmd, f->device);
  cmd->callback([f] { run_predict(*f); });
}

}  // namespace cu3d::apps
