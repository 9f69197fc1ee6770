// One full CPU training step through the engine, as `cu3d train --device cpu` runs it: forward,
// softmax + cross-entropy, backward (the tape), one Adam step. Per model at its own input size,
// batch CU3D_BENCH_BATCH (default 32):
//   cu3d_bench_cpu --benchmark_filter=TrainStep
// keras3d, keras3d-relu and cnn2d are the presets; c3d-small is a C3D-shaped config (conv, ReLU,
// max-pool blocks on 8x56x56 RGB clips) small enough to time on two cores. keras3d-rgb is keras3d
// on colour clips (10x32x32x3, 3dcnn.py --color), the input bench/compare_pytorch_cpu.py times in
// PyTorch. Counters: clips/s and GFLOP/s, counting 3 x 2 x forward MACs per clip (forward,
// bwd-data and bwd-filter); the first step, which grows the allocations, is not timed. The CPU
// column is the process's CPU time (all threads): on a shared machine it measures the work
// done, where the wall clock also measures the other processes (run with
// OMP_WAIT_POLICY=PASSIVE, or idle threads' spinning counts as work).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"
#include "layers/models.h"

namespace cu3d {
namespace {

constexpr int kClasses = 101;

int batch() {
  const char* env = std::getenv("CU3D_BENCH_BATCH");
  return env ? std::max(1, std::atoi(env)) : 32;
}

nlohmann::json layer(const char* type, const std::string& name, nlohmann::json fields = {}) {
  if (fields.is_null()) fields = nlohmann::json::object();
  fields["type"] = type;
  fields["name"] = name;
  return fields;
}

// C3D's structure (3x3x3 same convs + ReLU, pool1 1x2x2, then 2x2x2) at a quarter of its input
// and channel widths: ~0.25 GMAC per clip, a step of 32 clips in seconds rather than minutes.
ModelConfig c3d_small() {
  nlohmann::json layers = nlohmann::json::array();
  const std::vector<std::pair<std::string, int>> convs = {
      {"1a", 16}, {"2a", 32}, {"3a", 64}, {"3b", 64}};
  for (const auto& [id, filters] : convs) {
    layers.push_back(
        layer("conv3d", "conv" + id, {{"filters", filters}, {"kernel", 3}, {"padding", 1}}));
    layers.push_back(layer("relu", "relu" + id));
    if (id == "3a") continue;
    const nlohmann::json window = id == "1a" ? nlohmann::json{1, 2, 2} : nlohmann::json(2);
    layers.push_back(layer("max_pool3d", "pool" + id.substr(0, 1), {{"window", window}}));
  }
  layers.push_back(layer("flatten", "flatten"));
  layers.push_back(layer("dense", "fc6", {{"units", 256}}));
  layers.push_back(layer("relu", "relu6"));
  layers.push_back(layer("dense", "fc8", {{"units", "classes"}}));
  return {{"name", "c3d-small"},
          {"input", {8, 56, 56, 3}},
          {"init", "pytorch"},
          {"layers", std::move(layers)}};
}

ModelConfig bench_config(const std::string& name) {
  if (name == "c3d-small") return c3d_small();
  if (name == "keras3d-rgb") {
    ModelConfig config = preset_config("keras3d");
    config["input"] = {10, 32, 32, 3};
    return config;
  }
  return preset_config(name);
}

// Random clips in [-1, 1) and labels spread over the classes.
struct Batch {
  Tensor clips, labels;
  Batch(const Shape& clip, int n, Generator& gen) {
    Shape shape{n};
    shape.insert(shape.end(), clip.begin(), clip.end());
    clips = Tensor::uniform(shape, -1, 1, gen);
    std::vector<int32_t> y(n);
    for (int i = 0; i < n; ++i)
      y[i] = i % kClasses;
    labels = Tensor::from_vector(y, {n});
  }
};

void train_step(Module& model, Adam& adam, const Batch& batch) {
  adam.zero_grad();
  const Tensor loss = softmax_cross_entropy(model(batch.clips), batch.labels);
  autograd::backward(loss);
  adam.step();
}

void BM_TrainStep(benchmark::State& state, const std::string& name) {
  const ModelConfig config = bench_config(name);
  const ModelSummary summary = summarize_model(config, kClasses);
  auto model = build_model(config, kClasses);
  model->train();
  Adam adam(model->named_parameters(), AdamOptions{.lr = 1e-4});
  Generator gen(7);
  const Batch data(config_input_shape(config), batch(), gen);
  train_step(*model, adam, data);
  for (auto _ : state)
    train_step(*model, adam, data);
  autograd::clear_tape();
  const double flops_per_clip = 3 * 2.0 * double(summary.macs);
  state.counters["clips/s"] =
      benchmark::Counter(batch(), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_clip * batch() * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/clip"] = flops_per_clip * 1e-9;
  state.counters["batch"] = batch();
}

bool register_all() {
  for (const char* name : {"keras3d", "keras3d-rgb", "keras3d-relu", "cnn2d", "c3d-small"})
    benchmark::RegisterBenchmark(("TrainStep/" + std::string(name)).c_str(), BM_TrainStep,
                                 std::string(name))
        ->Unit(benchmark::kMillisecond)
        ->MinTime(3.0)
        ->MeasureProcessCPUTime()
        ->UseRealTime();
  return true;
}

const bool registered = register_all();

}  // namespace
}  // namespace cu3d
