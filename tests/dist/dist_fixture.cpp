#include "dist_fixture.h"

#include <unistd.h>

#include <cmath>
#include <map>

#include "apps/app.h"
#include "engine/safetensors.h"
#include "layers/models.h"

namespace cu3d::testing_dist {

fs::path DistData::root_;
fs::path DistData::shards_;

void DistData::SetUpTestSuite() {
  // mpirun starts the ranks together: the parent's pid (mpirun's, or its daemon's) names the run.
  root_ = fs::temp_directory_path() / ("cu3d-test-dist-" + std::to_string(::getppid()));
  shards_ = root_ / "shards";
  if (world().rank() == 0) {
    fs::remove_all(root_);  // a crashed earlier run with a recycled pid
    fs::create_directories(root_);
    testing::internal::CaptureStdout();
    const int synth =
        apps::run_cli({"synth", (root_ / "videos").string(), "--classes", "3", "--groups", "4",
                       "--clips", "2", "--frames", "12", "--size", "32"});
    const int prep =
        apps::run_cli({"prep", (root_ / "videos").string(), shards_.string(), "--depth", "10"});
    testing::internal::GetCapturedStdout();
    ASSERT_EQ(synth, 0);
    ASSERT_EQ(prep, 0);
  }
  world().barrier();
}

void DistData::TearDownTestSuite() {
  world().barrier();
  if (world().rank() == 0) fs::remove_all(root_);
}

fs::path DistData::dir(const std::string& name, bool per_rank) {
  return root_ / (per_rank ? name + "-rank" + std::to_string(world().rank()) : name);
}

apps::TrainOutcome DistData::train(const ModelConfig& model, dist::Communicator* comm,
                                   const fs::path& output, const Run& run) {
  const data::ShardSet shards(shards_);
  apps::TrainData data;
  data.train = std::make_unique<data::ShardSource>(shards, data::Side::train);
  data.test = std::make_unique<data::ShardSource>(shards, data::Side::test);
  data.recipe = shards.recipe();
  data.classes = shards.classes();
  apps::TrainSettings s;
  s.model = model;
  s.epochs = run.epochs;
  s.batch = run.batch;
  s.workers = 1;
  s.lr = run.lr;
  s.optimizer = run.optimizer;
  s.output = output;
  s.resume = run.resume;
  s.comm = comm;
  s.dist.timeout = 60;
  s.dist.sync_bn = run.sync_bn;
  s.after_step = [stop = run.stop_at_step](int64_t step) {
    if (step == stop) apps::request_stop();
  };
  testing::internal::CaptureStdout();
  const apps::TrainOutcome outcome = apps::train(s, data);
  testing::internal::GetCapturedStdout();
  return outcome;
}

ModelConfig without_dropout(ModelConfig config) {
  for (auto& layer : config.at("layers"))
    if (layer.at("type") == "dropout") layer["rate"] = 0.0;
  return config;
}

Difference relative_difference(const fs::path& a, const fs::path& b) {
  const SafetensorsContents x = load_safetensors(a);
  const SafetensorsContents y = load_safetensors(b);
  EXPECT_EQ(x.tensors.size(), y.tensors.size());
  const std::map<std::string, Tensor> other(y.tensors.begin(), y.tensors.end());
  Difference d;
  double weights_diff = 0, weights_norm = 0;
  for (const auto& [name, tx] : x.tensors) {
    const auto found = other.find(name);
    if (found == other.end()) {
      ADD_FAILURE() << name << " is missing from " << b;
      continue;
    }
    if (tx.dtype() != DType::f32) continue;  // step counters
    const std::vector<float> u = tx.to_vector<float>(), v = found->second.to_vector<float>();
    double diff = 0, norm = 0;
    for (size_t i = 0; i < u.size(); ++i) {
      diff += (double(u[i]) - v[i]) * (double(u[i]) - v[i]);
      norm += double(u[i]) * u[i];
    }
    const double relative = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
    if (relative >= d.worst_tensor) d.worst_tensor = relative, d.worst_name = name;
    if (name.starts_with("optimizer.")) continue;
    weights_diff += diff;
    weights_norm += norm;
  }
  d.weights = std::sqrt(weights_diff / weights_norm);
  return d;
}

}  // namespace cu3d::testing_dist
