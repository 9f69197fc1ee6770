// `cu3d train`'s loop (apps/trainer.h) on the GPU, as `cu3d train --device cuda` runs it: batches
// through the DeviceFeeder, steps on CUDA tensors, an evaluation pass after each epoch,
// checkpoints of CUDA weights and optimizer state, and resume. The engine's ops are checked one by
// one elsewhere (test_engine_cuda.cpp); here the loop around them is, against the same run on the
// CPU. Shards come from synthetic frames (tests/cpu/synthetic_frames.h) and the figures from
// figures_without_opencv.cpp: the GPU machines have no OpenCV.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/model_io.h"
#include "apps/trainer.h"
#include "cpu/checkpoint_expectations.h"
#include "cpu/synthetic_frames.h"
#include "cpu/test_data_fixtures.h"
#include "data/clip_source.h"
#include "data/shard.h"
#include "engine/compute.h"
#include "gpu/require_gpu.h"
#include "layers/models.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

// Each path of a fused block on 4-frame 32 x 32 colour clips: conv1's 3 input channels (conv1a's
// kernels), conv2 + bias + per-sample layer norm + ReLU + pool, conv3's 64 channels in and out
// (the kernels C3D's deeper layers run), dropout (its counters are part of a resume) and a dense
// head. A step takes milliseconds.
constexpr const char* kModel = R"({
  "name": "gpu3d", "input": [4, 32, 32, 3], "init": "pytorch",
  "layers": [
    {"type": "conv3d", "name": "conv1", "filters": 16, "kernel": 3, "padding": 1},
    {"type": "relu", "name": "relu1"},
    {"type": "max_pool3d", "name": "pool1", "window": [1, 2, 2]},
    {"type": "conv3d", "name": "conv2", "filters": 64, "kernel": 3, "padding": 1},
    {"type": "layer_norm", "name": "norm2"},
    {"type": "relu", "name": "relu2"},
    {"type": "max_pool3d", "name": "pool2", "window": [2, 2, 2]},
    {"type": "conv3d", "name": "conv3", "filters": 64, "kernel": 3, "padding": 1},
    {"type": "relu", "name": "relu3"},
    {"type": "max_pool3d", "name": "pool3", "window": [2, 2, 2]},
    {"type": "flatten", "name": "flatten"},
    {"type": "dropout", "name": "drop", "rate": 0.3},
    {"type": "dense", "name": "fc", "units": "classes"}]})";

constexpr int kClasses = 4;
const Shape kInput{4, 32, 32, 3};

// 4 classes x (5 training + 2 test videos): 5 steps of 4 clips per epoch.
const data::ShardSet& shards() {
  static data::testing::TempDir folder;
  static const std::unique_ptr<data::ShardSet> set = [] {
    data::Recipe recipe = data::keras_recipe(4, true, true);
    recipe.mean_source = "dataset";
    data::prepare_shards(data::testing::in_memory_dataset(kClasses, 5, 2), recipe, folder.path(),
                         {.videos_per_shard = 9, .progress = false},
                         data::testing::synthetic_frames);
    return std::make_unique<data::ShardSet>(folder.path());
  }();
  return *set;
}

TrainData shard_data() {
  TrainData data;
  data.train = std::make_unique<data::ShardSource>(shards(), data::Side::train);
  data.test = std::make_unique<data::ShardSource>(shards(), data::Side::test);
  data.recipe = shards().recipe();
  data.classes = shards().classes();
  data.description = "synthetic shards";
  return data;
}

// Plain SGD at a small rate: its update is linear in the gradient, so the CPU and GPU runs stay as
// close as their gradients are (Adam's first steps are ~lr x sign(g), which a tiny gradient's
// rounding can flip). The loss falls smoothly (at 0.05 it jumped to 20 in the first epoch).
TrainSettings settings(const Device& device, const fs::path& output) {
  TrainSettings s;
  s.model = nlohmann::json::parse(kModel);
  s.optimizer = "sgd";
  s.lr = 0.003;
  s.momentum = 0;
  s.epochs = 2;
  s.batch = 4;
  s.seed = 7;
  s.device = device;
  s.output = output;
  return s;
}

// The runs compute on cu3d's kernels with fusion, in `precision`, and leave the process-wide
// options as they found them.
class ComputeScope {
 public:
  explicit ComputeScope(Precision precision) : saved_(compute_options()) {
    compute_options().backends = OpBackends::all(Backend::cu3d);
    compute_options().precision = precision;
    compute_options().fuse = true;
  }
  ~ComputeScope() { compute_options() = saved_; }

 private:
  ComputeOptions saved_;
};

// The trainer's lines stay in the log: on a GPU machine they are what tells a failure's story.
TrainOutcome run_training(const TrainSettings& s) {
  TrainData data = shard_data();
  return train(s, data);
}

// result.txt's rows: epoch -> {loss, acc, val_loss, val_acc}.
std::map<int, std::vector<double>> read_results(const fs::path& run) {
  std::ifstream in(run / "result.txt");
  std::string header;
  std::getline(in, header);
  std::map<int, std::vector<double>> rows;
  int epoch;
  std::vector<double> row(4);
  while (in >> epoch >> row[0] >> row[1] >> row[2] >> row[3])
    rows[epoch] = row;
  return rows;
}

std::map<std::string, std::vector<float>> final_weights(const fs::path& run) {
  std::map<std::string, std::vector<float>> weights;
  for (const auto& [name, w] : load_trained_model(last_checkpoint(run)).model->named_parameters())
    weights[name] = w.to(Device::cpu()).to_vector<float>();
  return weights;
}

// ||a - b|| / ||b - start||: how far apart two runs' weights ended, against how far the
// reference moved them from where both started.
double relative_update_error(const std::vector<float>& a, const std::vector<float>& b,
                             const std::vector<float>& start) {
  double diff = 0, moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    moved += (double(b[i]) - start[i]) * (double(b[i]) - start[i]);
  }
  return std::sqrt(diff) / std::max(std::sqrt(moved), 1e-30);
}

// The GPU run in `precision` against the CPU run (fp32): each epoch's training and test loss
// within `loss_tolerance`, and with `update_tolerance` > 0 each weight's change over the run.
void expect_run_follows_the_cpu_run(Precision precision, double loss_tolerance,
                                    double update_tolerance) {
  data::testing::TempDir root;
  {
    const ComputeScope scope(Precision::fp32);
    ASSERT_EQ(run_training(settings(Device::cpu(), root.path() / "cpu")), TrainOutcome::finished);
  }
  const ComputeScope scope(precision);
  const fs::path run = root.path() / "cuda";
  ASSERT_EQ(run_training(settings(Device::cuda(), run)), TrainOutcome::finished);

  for (const char* name :
       {"checkpoint-last.safetensors", "checkpoint-best.safetensors", "result.txt", "config.json",
        "summary.txt", "model.dot", "model_accuracy.png", "model_loss.png", "confusion_matrix.png"})
    EXPECT_TRUE(fs::exists(run / name)) << name;
  const auto want = read_results(root.path() / "cpu"), got = read_results(run);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(want.size(), 2u);
  for (const auto& [epoch, row] : want) {
    SCOPED_TRACE("epoch " + std::to_string(epoch));
    EXPECT_NEAR(got.at(epoch)[0], row[0], loss_tolerance * row[0]) << "loss";
    EXPECT_NEAR(got.at(epoch)[2], row[2], loss_tolerance * row[2]) << "val_loss";
  }
  if (update_tolerance == 0) return;

  const std::shared_ptr<Module> start =
      build_model(settings(Device::cpu(), {}).model, kClasses, kInput, 7);
  const auto on_cpu = final_weights(root.path() / "cpu"), on_gpu = final_weights(run);
  for (const auto& [name, w] : start->named_parameters())
    EXPECT_LT(relative_update_error(on_gpu.at(name), on_cpu.at(name), w.to_vector<float>()),
              update_tolerance)
        << name;
}

// Both compute in fp32; only the order of the sums differs, by ~1e-6 of each op's result. Run on
// the CPU against itself with its learning rate changed by 1e-6 (1e-7) of itself, the weights'
// changes differed by up to 3.5e-5 (2.9e-6): the run amplifies a small difference ~30x.
TEST(TrainCuda, Fp32RunFollowsTheCpuRun) {
  CU3D_REQUIRE_GPU();
  expect_run_follows_the_cpu_run(Precision::fp32, 1e-3, 1e-3);
}

// bf16's ~1e-2 per op is far beyond where the run stays linear (the learning rate changed by 1e-4
// of itself moved the weights' changes by up to 3.9 %: ReLU and max-pool decisions flip), so only
// the losses are compared; they moved by up to 0.35 % with the learning rate changed by 3 %.
TEST(TrainCuda, Bf16RunFollowsTheCpuRunWithinItsPrecision) {
  CU3D_REQUIRE_GPU();
  expect_run_follows_the_cpu_run(Precision::bf16, 2e-2, 0);
}

// Stopped twice mid-epoch (as Ctrl-C stops it) and resumed from the checkpoints of CUDA weights
// and optimizer state, the run ends bit for bit where an uninterrupted one does: every kernel on
// the way is deterministic (no float atomics; cuBLAS on one stream).
TEST(TrainCuda, ResumedRunEndsWithTheWholeRunsWeights) {
  CU3D_REQUIRE_GPU();
  const ComputeScope scope(Precision::fp32);
  data::testing::TempDir root;
  const fs::path whole = root.path() / "whole", pieces = root.path() / "pieces";
  ASSERT_EQ(run_training(settings(Device::cuda(), whole)), TrainOutcome::finished);
  // Steps 1-5 are epoch 1, 6-10 epoch 2: stopped at step 2 (a fresh run), then at 8 (resumed).
  for (const auto& [stop_at, resume] : {std::pair<int64_t, bool>{2, false}, {8, true}}) {
    TrainSettings s = settings(Device::cuda(), pieces);
    s.resume = resume;
    s.after_step = [stop_at = stop_at](int64_t step) {
      if (step == stop_at) request_stop();
    };
    ASSERT_EQ(run_training(s), TrainOutcome::interrupted) << "stopped at step " << stop_at;
  }
  TrainSettings last = settings(Device::cuda(), pieces);
  last.resume = true;
  ASSERT_EQ(run_training(last), TrainOutcome::finished);
  expect_same_checkpoints(last_checkpoint(whole), last_checkpoint(pieces));
  EXPECT_EQ(read_results(whole), read_results(pieces));
}

// A trained checkpoint evaluated on the GPU and on the CPU: the same clips, predictions and loss.
TEST(TrainCuda, EvaluationMatchesTheCpu) {
  CU3D_REQUIRE_GPU();
  const ComputeScope scope(Precision::fp32);
  data::testing::TempDir root;
  ASSERT_EQ(run_training(settings(Device::cuda(), root.path())), TrainOutcome::finished);
  const TrainedModel trained = load_trained_model(last_checkpoint(root.path()));
  const data::ShardSource test(shards(), data::Side::test);
  auto evaluate_on = [&](const Device& device) {
    trained.model->to(device);
    return evaluate(*trained.model, test, trained.recipe, trained.spec.input, kClasses, 4, 2);
  };
  const EvalResult want = evaluate_on(Device::cpu());
  const EvalResult got = evaluate_on(Device::cuda());
  EXPECT_EQ(got.clips, want.clips);
  EXPECT_EQ(got.videos, want.videos);
  EXPECT_NEAR(got.loss, want.loss, 1e-4 * want.loss);
  EXPECT_EQ(got.confusion, want.confusion);
  // The last epoch's val_loss in result.txt is the trainer's own evaluation on the GPU.
  EXPECT_NEAR(read_results(root.path()).at(2)[2], got.loss, 1e-5 + 1e-4 * got.loss);
}

}  // namespace
}  // namespace cu3d::apps
