// Models defined by a small JSON config, so a user can add a variant without recompiling, and the
// built-in presets (c3d, c3d-ln, keras3d and its variants, cnn2d) returned as such configs.
// docs/MODELS.md describes the format; a config looks like
//   {"name": "tiny", "input": [8, 32, 32, 3], "init": "pytorch",
//    "layers": [{"type": "conv3d", "name": "conv1", "filters": 16, "kernel": 3, "padding": 1},
//               {"type": "relu", "name": "relu1"},
//               {"type": "max_pool3d", "name": "pool1", "window": 2},
//               {"type": "flatten", "name": "flatten"},
//               {"type": "dense", "name": "fc", "units": "classes"}]}
// Input channels and dense fan-ins are inferred from the input shape, so a config states only
// what a paper's table states. Models output logits (the loss applies the softmax), except an
// Ensemble, whose forward averages its members' probabilities.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"
#include "layers/module.h"

namespace cu3d {

using ModelConfig = nlohmann::json;

// Names of the built-in presets, in the order docs/MODELS.md lists them.
std::vector<std::string> preset_names();
// The preset's config; an unknown name is an error listing the presets.
ModelConfig preset_config(const std::string& name);
// A preset name, or the path of a JSON config file (anything containing '/' or ending in .json).
ModelConfig load_model_config(const std::string& name_or_path);
// The per-sample input shape the config declares, e.g. [16, 112, 112, 3] (D, H, W, C).
Shape config_input_shape(const ModelConfig& config);

// One layer as shape inference sees it; sizes are per sample (no batch axis).
struct LayerInfo {
  std::string name;              // "conv1a"
  std::string type;              // "conv3d"
  std::string detail;            // "64, 3x3x3, stride 1x1x1, pad 1x1x1"
  Shape output;                  // (D, H, W, C), (H, W, C) or (features)
  int64_t parameters = 0;        // trainable values
  int64_t buffers = 0;           // non-trainable state (batch-norm running statistics)
  int64_t macs = 0;              // forward multiply-accumulates (conv and dense; the rest is ~free)
  int64_t activation_bytes = 0;  // f32 output, 0 for views (flatten)
  int64_t statistics_bytes = 0;  // f32 statistics backward keeps (layer norm: mean and rstd)
  // The pre-ReLU output of a fused block (the conv's, or the layer norm's after a conv), which
  // the block does not keep: its backward reads the ReLU mask from the ReLU output.
  bool dropped_when_fused = false;
};

struct ModelSummary {
  std::string name;
  Shape input;
  int num_classes = 0;
  int members = 1;                // models in the ensemble; the totals below include all of them
  std::vector<LayerInfo> layers;  // one member's layers
  int64_t parameters = 0, buffers = 0, macs = 0, activation_bytes = 0;

  // Bytes per clip that the tape keeps from the forward pass for backward: the input, every
  // layer output (with fused conv blocks, `fused`, all but their pre-ReLU outputs) and the
  // layer-norm statistics.
  int64_t kept_bytes_per_clip(bool fused) const;
  // Estimated host or device memory of one training step at `batch` clips with Adam, in bytes:
  // weights, gradients and Adam's two moments (16 bytes a parameter) and the buffers, plus, per
  // clip, kept_bytes_per_clip(fused) and twice the largest activation for the gradients in
  // flight (one layer's output and input gradients; an upper bound, since by the time backward
  // reaches a layer the kept outputs after it are freed). Conv workspaces and allocator slack
  // come on top.
  int64_t training_bytes(int64_t batch, bool fused) const;
};

// Shape inference without allocating the model: validates the config (every error names the
// layer and the key) and fills the table. An empty `input` means the config's own.
ModelSummary summarize_model(const ModelConfig& config, int num_classes, const Shape& input = {});
// The summary as a text table with totals and the training-memory estimate for `batches`, with
// fused conv blocks or without (`fused`, which the text names; the engine's default is fused).
std::string format_summary(const ModelSummary& summary,
                           const std::vector<int64_t>& batches = {1, 8, 16, 32, 64},
                           bool fused = true);
// The layer graph in Graphviz DOT, one box per layer with its output shape (render with
// `dot -Tpng`).
std::string model_dot(const ModelSummary& summary);

// Builds the model the config describes: a Sequential whose children carry the layer names (so
// parameters are "conv1a.weight"), or an Ensemble when the config sets "ensemble": N > 1.
// Parameters are initialised from `seed` in layer order; each dropout layer (and each ensemble
// member) gets its own seed derived from it, so one seed reproduces the whole model.
std::shared_ptr<Module> build_model(const ModelConfig& config, int num_classes,
                                    const Shape& input = {}, uint64_t seed = 0);

// N models of one config, trained and saved as one unit (parameters "member0.conv1a.weight").
// forward() returns the average of the members' softmax outputs: (n, classes) probabilities for
// evaluation and prediction. Training calls loss(), the mean of the members' own softmax
// cross-entropies: each member gets exactly the gradient it would get trained alone (as the Keras
// ensemble trains its members one by one), in one step with one optimizer over all parameters.
class Ensemble : public Module {
 public:
  explicit Ensemble(std::vector<std::shared_ptr<Module>> members);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

  // labels: int32 (n). A one-element tensor to call autograd::backward on.
  Tensor loss(const Tensor& x, const Tensor& labels);
  std::size_t size() const { return children().size(); }
  Module& member(std::size_t index) const { return *children().at(index).second; }
};

}  // namespace cu3d
