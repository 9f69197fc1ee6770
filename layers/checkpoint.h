// Model checkpoints: one safetensors file (engine/safetensors.h, written atomically) holding
//   - the model's parameters and buffers under their dotted names ("conv1a.weight",
//     "fc1_bn.running_mean"), readable by PyTorch's safetensors.torch.load_file;
//   - optionally the optimizer state under "optimizer.<name>" ("optimizer.conv1a.weight.exp_avg",
//     "optimizer.step");
//   - in the metadata, the model config, class count and input shape ("cu3d.model_config",
//     "cu3d.num_classes", "cu3d.input"), so the file alone rebuilds the model, plus whatever
//     the caller adds (epoch, step, class names, RNG state) under its own keys;
//   - in the metadata, "cu3d.checksum": FNV-1a (engine/checksum.h) over every tensor's name,
//     dtype, shape and bytes, checked by read_checkpoint (a file without one, from another tool,
//     is accepted).
// Loading is strict: any missing or unexpected tensor, or a shape or dtype that differs, is an
// error naming the tensor and both shapes.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/optim/optimizer.h"
#include "layers/models.h"

namespace cu3d {

// What build_model needs to rebuild the model.
struct ModelSpec {
  ModelConfig config;
  int num_classes = 0;
  Shape input;  // per sample; empty means the config's own
};

struct Checkpoint {
  std::string source;  // "checkpoint <path>", for error messages
  ModelSpec model;
  std::map<std::string, std::string> metadata;  // the caller's keys (no "cu3d." ones)
  NamedTensors tensors;                         // as stored, on the CPU
};

// `metadata` keys must not start with "cu3d." (those are the checkpoint's own).
void save_checkpoint(const std::filesystem::path& path, const ModelSpec& spec, const Module& model,
                     const Optimizer* optimizer = nullptr,
                     const std::map<std::string, std::string>& metadata = {});

// Reads and validates a checkpoint file (its tensors are not yet matched to any model).
Checkpoint read_checkpoint(const std::filesystem::path& path);

// Copies the checkpoint's tensors into `model` (and `optimizer`, when given: its state must then
// be in the file; without one, stored optimizer state is ignored). Nothing is copied unless
// everything matches.
void restore_checkpoint(const Checkpoint& checkpoint, Module& model,
                        Optimizer* optimizer = nullptr);

// The problems a strict loader found, one per line, at most 8 then a count (for its error).
std::string list_problems(const std::vector<std::string>& problems);

// Rebuilds the model the file describes and restores its weights: for evaluation and prediction.
// Resuming training builds the model with the run's seed (which also seeds its dropout layers)
// and calls restore_checkpoint with the optimizer.
std::shared_ptr<Module> load_model(const std::filesystem::path& path);

}  // namespace cu3d
