// `cu3d visualize`: activation maximization, as the Keras tool's visualize_input. Starting from
// faint noise around mid-gray (its `random * 20 + 128`), Adam ascends the gradient of one unit's
// mean activation with respect to the input clip (the tape carries gradients to inputs), then
// the clip is written as PNG frames and one contact sheet, with the class the model predicts
// for it. A unit is a channel of a convolution-shaped output (its mean over all positions) or
// one feature of a flat output.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include <fmt/core.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "apps/model_io.h"
#include "apps/subcommands.h"
#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

// Keras's visualize_input starts from np.random.random(shape) * 20 + 128 in pixel space.
constexpr double kNoiseLow = 128, kNoiseHigh = 148;
// Frames are drawn at least this tall in the contact sheet (a 32x32 frame is a speck otherwise).
constexpr int kMinFrameHeight = 128;
constexpr int kFrameGap = 4;

struct VisualizeFlags {
  std::string checkpoint;
  std::string layer;
  int unit = 0;
  int iterations = 100;
  double lr = 0.05;
  uint64_t seed = 1;
  std::string output;
  bool list = false;
};

ModelSummary summary_of(const TrainedModel& m) {
  return summarize_model(m.spec.config, m.spec.num_classes, m.spec.input);
}

void list_layers(const TrainedModel& m) {
  const ModelSummary s = summary_of(m);
  fmt::print("{:<16} {:<11} {:<16} {}\n", "layer", "type", "output", "units");
  for (const LayerInfo& l : s.layers)
    fmt::print("{:<16} {:<11} {:<16} {}\n", l.name, l.type, shape_str(l.output), l.output.back());
}

// The layer's output for `x`: the model's children run in order up to and including it.
Tensor layer_output(Module& model, const std::string& layer, const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, child] : model.children()) {
    y = (*child)(y);
    if (name == layer) return y;
  }
  throw Error(fmt::format("--layer '{}': no such layer; cu3d visualize --list shows them", layer));
}

// 1 where the value belongs to `unit` (the last axis), divided by how many do: the objective is
// the unit's mean activation over the batch item's positions.
Tensor unit_mask(const Shape& shape, int unit) {
  const int64_t units = shape.back(), count = shape_numel(shape) / units;
  std::vector<float> mask(size_t(shape_numel(shape)), 0.f);
  for (int64_t i = unit; i < int64_t(mask.size()); i += units)
    mask[size_t(i)] = float(1.0 / double(count));
  return Tensor::from_vector(mask, shape);
}

double activation(Module& model, const std::string& layer, const Tensor& x, const Tensor& mask) {
  autograd::NoGradGuard no_grad;
  return sum(mul(layer_output(model, layer, x), mask)).item();
}

Tensor noise_input(const TrainedModel& m, uint64_t seed) {
  Generator gen(seed);
  Shape shape = {1};
  shape.insert(shape.end(), m.spec.input.begin(), m.spec.input.end());
  std::vector<float> x = Tensor::uniform(shape, kNoiseLow, kNoiseHigh, gen).to_vector<float>();
  const std::vector<float>& mean = m.recipe.mean;
  const size_t channels = size_t(shape.back());
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = (x[i] - (mean.empty() ? 0.f : mean[i % channels])) * m.recipe.scale;
  return Tensor::from_vector(x, shape);
}

// The frames of a (1, [D,] H, W, C) input, each stretched to 0..255 over the whole clip (the
// ascended input leaves the pixel range, and a shared stretch keeps frames comparable), in
// OpenCV's BGR or gray.
std::vector<cv::Mat> input_frames(const Tensor& x, data::ColorOrder color) {
  const Shape& s = x.shape();
  const int h = int(s[s.size() - 3]), w = int(s[s.size() - 2]), c = int(s.back());
  const std::vector<float> v = x.to_vector<float>();
  const auto [low, high] = std::minmax_element(v.begin(), v.end());
  const double range = std::max(1e-12, double(*high - *low));
  const int64_t frame_size = int64_t(h) * w * c, depth = int64_t(v.size()) / frame_size;
  std::vector<cv::Mat> frames;
  for (int64_t f = 0; f < depth; ++f) {
    cv::Mat frame(h, w, c == 3 ? CV_8UC3 : CV_8UC1);
    for (int64_t i = 0; i < frame_size; ++i)
      frame.data[i] = uint8_t(std::lround(255.0 * (v[size_t(f * frame_size + i)] - *low) / range));
    if (c == 3 && color == data::ColorOrder::rgb) cv::cvtColor(frame, frame, cv::COLOR_RGB2BGR);
    frames.push_back(frame);
  }
  return frames;
}

void write_png(const fs::path& path, const cv::Mat& image) {
  std::vector<uchar> bytes;
  CU3D_CHECK(cv::imencode(".png", image, bytes), "{}: PNG encoding failed", path.string());
  write_atomically(path,
                   std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// The frames side by side, enlarged by a whole factor (nearest neighbour: pixels stay crisp).
cv::Mat contact_sheet(const std::vector<cv::Mat>& frames) {
  const int factor = std::max(1, (kMinFrameHeight + frames[0].rows - 1) / frames[0].rows);
  const int h = frames[0].rows * factor, w = frames[0].cols * factor;
  const int n = int(frames.size());
  cv::Mat sheet(h, n * w + (n - 1) * kFrameGap, frames[0].type(), cv::Scalar::all(255));
  for (int i = 0; i < n; ++i) {
    cv::Mat big;
    cv::resize(frames[size_t(i)], big, {w, h}, 0, 0, cv::INTER_NEAREST);
    big.copyTo(sheet(cv::Rect(i * (w + kFrameGap), 0, w, h)));
  }
  return sheet;
}

void check_flags(const VisualizeFlags& f, const TrainedModel& m) {
  CU3D_CHECK(dynamic_cast<Ensemble*>(m.model.get()) == nullptr,
             "{}: an ensemble has no single layer to visualize; visualize a checkpoint of one "
             "model",
             f.checkpoint);
  CU3D_CHECK(!f.layer.empty(), "--layer is required (cu3d visualize {} --list shows the layers)",
             f.checkpoint);
  const ModelSummary s = summary_of(m);
  const auto layer = std::find_if(s.layers.begin(), s.layers.end(),
                                  [&](const LayerInfo& l) { return l.name == f.layer; });
  CU3D_CHECK(layer != s.layers.end(), "--layer '{}': no such layer in {}; --list shows them",
             f.layer, f.checkpoint);
  CU3D_CHECK(f.unit >= 0 && f.unit < layer->output.back(), "--unit {}: layer '{}' has units 0..{}",
             f.unit, f.layer, layer->output.back() - 1);
  CU3D_CHECK(f.iterations >= 1, "--iter {} must be at least 1", f.iterations);
  CU3D_CHECK(std::isfinite(f.lr) && f.lr > 0, "--lr {} must be positive", f.lr);
}

void run_visualize(const VisualizeFlags& f) {
  const TrainedModel m = load_trained_model(f.checkpoint);
  if (f.list) return list_layers(m);
  check_flags(f, m);
  Module& model = *m.model;  // in evaluation mode: no dropout, batch norm's running statistics
  Tensor x = noise_input(m, f.seed);
  x.set_requires_grad(true);
  Tensor mask;
  {
    autograd::NoGradGuard no_grad;
    mask = unit_mask(layer_output(model, f.layer, x).shape(), f.unit);
  }
  const double before = activation(model, f.layer, x, mask);
  Adam adam(std::vector<Tensor>{x}, AdamOptions{.lr = f.lr});
  for (int i = 0; i < f.iterations; ++i) {
    adam.zero_grad();
    // Adam descends, so it is given the negated objective.
    autograd::backward(scale(sum(mul(layer_output(model, f.layer, x), mask)), -1.0));
    adam.step();
  }
  const double after = activation(model, f.layer, x, mask);
  const std::vector<float> p = class_probabilities(model, x, m.spec.num_classes);
  const int top = top_k(p.data(), m.spec.num_classes, 1)[0];

  const fs::path out = f.output.empty() ? fs::path(f.checkpoint).parent_path() /
                                              fmt::format("visualize_{}_{}", f.layer, f.unit)
                                        : fs::path(f.output);
  fs::create_directories(out);
  const std::vector<cv::Mat> frames = input_frames(x, m.recipe.color);
  for (size_t i = 0; i < frames.size(); ++i)
    write_png(out / fmt::format("frame_{:02}.png", i), frames[i]);
  write_png(out / "contact_sheet.png", contact_sheet(frames));
  fmt::print(
      "visualize: layer {} unit {}: mean activation {:.6g} -> {:.6g} after {} Adam steps "
      "(lr {})\n",
      f.layer, f.unit, before, after, f.iterations, f.lr);
  fmt::print("visualize: the model predicts {} ({:.1f}%) for the result\n", m.classes[size_t(top)],
             100 * p[size_t(top)]);
  fmt::print("visualize: {} frame{} in {}/frame_NN.png, contact sheet {}\n", frames.size(),
             frames.size() == 1 ? "" : "s", out.string(), (out / "contact_sheet.png").string());
}

}  // namespace

void add_visualize_command(CLI::App& app) {
  auto f = std::make_shared<VisualizeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "visualize",
      "Activation maximization (the Keras tool's visualize_input): from faint noise, Adam "
      "ascends one unit's mean activation with respect to the input clip; writes the clip as "
      "PNG frames and a contact sheet, and prints the class the model predicts for it.\n"
      "Example: cu3d visualize runs/k3d/checkpoint-best.safetensors --layer conv2b --unit 3");
  cmd->add_option("checkpoint", f->checkpoint, "a .safetensors checkpoint written by cu3d train")
      ->required();
  cmd->add_flag("--list", f->list, "print the layer names, output shapes and unit counts");
  cmd->add_option("--layer", f->layer, "the layer whose unit to maximize (see --list)");
  cmd->add_option("--unit", f->unit, "channel (or feature) index in that layer")
      ->capture_default_str();
  cmd->add_option("--iter", f->iterations, "Adam steps")->capture_default_str();
  cmd->add_option("--lr", f->lr, "Adam's learning rate, in the model's input units")
      ->capture_default_str();
  cmd->add_option("--seed", f->seed, "seed of the starting noise")->capture_default_str();
  cmd->add_option("--output", f->output,
                  "folder for the PNGs (default: visualize_<layer>_<unit> beside the checkpoint)");
  cmd->callback([f] { run_visualize(*f); });
}

}  // namespace cu3d::apps
