// Model checkpoints: an exact round trip of parameters, buffers, optimizer state and metadata,
// a model rebuilt from the file alone, and named errors for every kind of mismatch.
#include <cstring>

#include <gtest/gtest.h>
#include <unistd.h>

#include "cpu/error_testing.h"
#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"

namespace cu3d {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A scratch file that is removed at scope exit.
struct TempFile {
  explicit TempFile(const std::string& name)
      : path(fs::temp_directory_path() / fmt::format("cu3d_test_{}_{}", ::getpid(), name)) {}
  ~TempFile() { fs::remove(path); }
  fs::path path;
};

// Conv, batch norm (so there are buffers), dense: small enough to train a step in microseconds.
json small_config() {
  return json::parse(R"({
    "name": "small", "input": [4, 6, 6, 1], "init": "pytorch",
    "layers": [
      {"type": "conv3d", "name": "conv1", "filters": 4, "kernel": 3, "padding": 1},
      {"type": "batch_norm", "name": "bn1"},
      {"type": "relu", "name": "relu1"},
      {"type": "max_pool3d", "name": "pool1", "window": 2},
      {"type": "flatten", "name": "flatten"},
      {"type": "dropout", "name": "drop", "rate": 0.5},
      {"type": "dense", "name": "fc", "units": "classes"}]})");
}

const Tensor kInput = [] {
  Generator gen(3);
  return Tensor::uniform({3, 4, 6, 6, 1}, -1.0, 1.0, gen);
}();

// One Adam step, so that the moments, the step count and the batch-norm statistics are non-zero.
void train_one_step(Module& model, Adam& adam) {
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 2}, {3});
  adam.zero_grad();
  autograd::backward(softmax_cross_entropy(model(kInput), labels));
  adam.step();
}

void expect_same(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.dtype(), b[i].second.dtype()) << a[i].first;
    ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes()) << a[i].first;
    EXPECT_EQ(std::memcmp(a[i].second.raw_data(), b[i].second.raw_data(), a[i].second.nbytes()), 0)
        << a[i].first << " differs";
  }
}

using testing::error_of;

TEST(Checkpoint, RoundTripIsExact) {
  const ModelSpec spec{small_config(), 3, {}};
  auto model = build_model(spec.config, 3, {}, 1);
  Adam adam(model->named_parameters(), AdamOptions{.lr = 1e-2});
  train_one_step(*model, adam);
  TempFile file("roundtrip.safetensors");
  save_checkpoint(file.path, spec, *model, &adam, {{"epoch", "3"}, {"classes", "a\nb\nc"}});

  const Checkpoint checkpoint = read_checkpoint(file.path);
  EXPECT_EQ(checkpoint.model.config, spec.config);
  EXPECT_EQ(checkpoint.model.num_classes, 3);
  EXPECT_TRUE(checkpoint.model.input.empty());
  EXPECT_EQ(checkpoint.metadata,
            (std::map<std::string, std::string>{{"epoch", "3"}, {"classes", "a\nb\nc"}}));

  auto fresh = build_model(spec.config, 3, {}, 2);
  Adam fresh_adam(fresh->named_parameters(), AdamOptions{.lr = 1e-2});
  ASSERT_NE(fresh->named_parameters()[0].second.to_vector<float>(),
            model->named_parameters()[0].second.to_vector<float>());
  restore_checkpoint(checkpoint, *fresh, &fresh_adam);
  expect_same(fresh->named_parameters(), model->named_parameters());
  expect_same(fresh->named_buffers(), model->named_buffers());
  expect_same(fresh_adam.state(), adam.state());
  EXPECT_EQ(fresh_adam.steps(), 1);

  // The file alone rebuilds the model: same outputs in evaluation.
  auto loaded = load_model(file.path);
  model->eval();
  loaded->eval();
  autograd::NoGradGuard no_grad;
  EXPECT_EQ((*loaded)(kInput).to_vector<float>(), (*model)(kInput).to_vector<float>());
}

TEST(Checkpoint, ShapeMismatchNamesTheTensorAndBothShapes) {
  TempFile file("classes.safetensors");
  auto five = build_model(small_config(), 5);
  save_checkpoint(file.path, {small_config(), 5, {}}, *five);
  auto six = build_model(small_config(), 6);
  const std::vector<float> before = six->named_parameters().back().second.to_vector<float>();
  const std::string error = error_of([&] { restore_checkpoint(read_checkpoint(file.path), *six); });
  EXPECT_NE(error.find(file.path.string()), std::string::npos) << error;
  EXPECT_NE(error.find("tensor 'fc.weight' is f32 [5,72] in the file but f32 [6,72] in the model"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("'fc.bias' is f32 [5]"), std::string::npos) << error;
  EXPECT_EQ(six->named_parameters().back().second.to_vector<float>(), before)
      << "nothing is copied unless everything matches";
}

TEST(Checkpoint, MissingAndUnexpectedTensorsAreNamed) {
  TempFile file("layers.safetensors");
  auto model = build_model(small_config(), 3);
  save_checkpoint(file.path, {small_config(), 3, {}}, *model);
  json renamed = small_config();
  renamed["layers"][1]["name"] = "norm1";
  auto other = build_model(renamed, 3);
  const std::string error =
      error_of([&] { restore_checkpoint(read_checkpoint(file.path), *other); });
  EXPECT_NE(error.find("missing tensor 'norm1.gamma' [4]"), std::string::npos) << error;
  EXPECT_NE(error.find("missing tensor 'norm1.running_var' [4]"), std::string::npos) << error;
  EXPECT_NE(error.find("unexpected tensor 'bn1.beta' [4]"), std::string::npos) << error;

  auto same = build_model(small_config(), 3);
  Adam same_adam(same->named_parameters(), AdamOptions{});
  const std::string no_state =
      error_of([&] { restore_checkpoint(read_checkpoint(file.path), *same, &same_adam); });
  EXPECT_NE(no_state.find("holds no optimizer state"), std::string::npos) << no_state;
}

TEST(Checkpoint, WeightsLoadWithoutTheOptimizerStateTheyWereSavedWith) {
  TempFile file("weights.safetensors");
  auto model = build_model(small_config(), 3, {}, 4);
  Adam adam(model->named_parameters(), AdamOptions{});
  train_one_step(*model, adam);
  save_checkpoint(file.path, {small_config(), 3, {}}, *model, &adam);
  auto evaluation = build_model(small_config(), 3, {}, 5);
  restore_checkpoint(read_checkpoint(file.path), *evaluation);
  expect_same(evaluation->named_parameters(), model->named_parameters());
}

TEST(Checkpoint, RejectsFilesThatAreNotCu3dCheckpoints) {
  TempFile file("bare.safetensors");
  save_safetensors(file.path, {{"w", Tensor::zeros({2})}});
  EXPECT_NE(error_of([&] { read_checkpoint(file.path); }).find("no 'cu3d.model_config'"),
            std::string::npos);
  save_safetensors(file.path, {{"w", Tensor::zeros({2})}},
                   {{"cu3d.model_config", small_config().dump()},
                    {"cu3d.num_classes", "-3"},
                    {"cu3d.input", "[]"}});
  EXPECT_NE(error_of([&] {
              read_checkpoint(file.path);
            }).find("'cu3d.num_classes' must be a positive class count, got -3"),
            std::string::npos);
  auto model = build_model(small_config(), 3);
  EXPECT_NE(error_of([&] {
              save_checkpoint(file.path, {small_config(), 3, {}}, *model, nullptr,
                              {{"cu3d.input", "[1]"}});
            }).find("reserved"),
            std::string::npos);
}

}  // namespace
}  // namespace cu3d
