// The training loop behind `cu3d train`, usable from tests: loader -> clips to float -> model ->
// softmax cross-entropy -> backward -> optimizer step (Adam or SGD, with an LR schedule), a
// progress line, an evaluation pass after every epoch, and the run's output folder:
//   checkpoint-last.safetensors  after every epoch and on Ctrl-C (weights, optimizer state, and
//                                in the metadata the epoch, step, dropout counters, history)
//   checkpoint-best.safetensors  the epoch with the best video top-1 accuracy
//   result.txt                   epoch, loss, acc, val_loss, val_acc (the Keras tool's columns)
//   classes.txt, command.txt, config.json, summary.txt, model.dot (+ model.png with Graphviz)
//   model_accuracy.png, model_loss.png, confusion_matrix.png
//   events.out.tfevents.*        TensorBoard scalars and images (apps/tensorboard_events.h)
// Every file but the event log is written atomically. `resume` continues from checkpoint-last: the
// batch order is a pure function of (seed, epoch), dropout masks of (seed, call counter), and the
// optimizer state is restored, so on the CPU the resumed run ends with exactly the weights of an
// uninterrupted one.
#pragma once

#include "engine/device.h"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "apps/distributed.h"
#include "apps/model_io.h"
#include "data/clip_source.h"
#include "data/recipe.h"
#include "layers/checkpoint.h"

namespace cu3d::apps {

// Where the clips come from: the two sides of a shard set, or of a video folder decoded on every
// read. Owns the sources (and, through `owner`, the shard set they view).
struct TrainData {
  std::shared_ptr<const void> owner;  // keeps what the sources view alive
  std::unique_ptr<data::ClipSource> train, test;
  data::Recipe recipe;  // as prepared (a 2D model's single-frame recipe is derived from it)
  std::vector<std::string> classes;
  std::string description;  // "shards motion-shards (split: ...)", for logs
};

// Everything `cu3d train` sets besides the data.
struct TrainSettings {
  ModelConfig model;  // a preset's or a file's config (with "ensemble" set for --ensemble)
  std::string optimizer = "adam";  // adam or sgd
  double lr = 1e-3;
  double momentum = 0.9;  // sgd
  double weight_decay = 0;
  std::string schedule = "constant";  // constant, cosine or step (x0.1 every third of the run)
  int64_t warmup = 0;                 // steps of linear warm-up
  int epochs = 10;
  int batch = 16;
  int workers = 2;
  uint64_t seed = 1;
  Device device = Device::cpu();  // where the model trains (batches are cut on the CPU)
  std::filesystem::path output;
  bool resume = false;
  std::filesystem::path init;  // a checkpoint whose matching tensors start the model
  std::string command_line;    // recorded in command.txt
  bool progress_tty = false;   // one updating line instead of plain lines
  // The axis order of the clips a Keras --init file was trained on: dhwc, or hwdc.
  std::string keras_order = "dhwc";
  // Data parallel (apps/distributed.h): the job's communicator, null for a single process.
  dist::Communicator* comm = nullptr;
  DistSettings dist;
  bool check_numerics = false;  // test every layer output and gradient for NaN/Inf
  double clip_grad_norm = 0;    // clip the gradients' global L2 norm to this (0: off)
  // Called after every optimizer step with the global step (tests interrupt runs through it).
  std::function<void(int64_t step)> after_step;
};

// Refuses an --optimizer or --schedule train() does not know, naming the flag (the command line
// calls it before creating anything).
void check_plan_names(const TrainSettings& settings);

enum class TrainOutcome { finished, interrupted };

// Runs (or resumes) training until `settings.epochs` or until stop_requested() becomes true,
// which saves checkpoint-last first. Throws cu3d::Error on a non-finite loss (with
// `check_numerics`, on the first non-finite layer output or gradient, naming the layer), naming
// the step and the last good checkpoint.
TrainOutcome train(const TrainSettings& settings, TrainData& data);

// Asks a running train() to save a checkpoint and return at the end of its current step (what
// Ctrl-C does). Safe from a signal handler. train() clears it when it starts.
void request_stop();
bool stop_requested();

// The checkpoint paths of a run folder.
std::filesystem::path last_checkpoint(const std::filesystem::path& output);
std::filesystem::path best_checkpoint(const std::filesystem::path& output);

}  // namespace cu3d::apps
