// `cu3d train --init` with another framework's weights (apps/import_weights.h): Keras .h5 and
// PyTorch C3D safetensors are imported, with a new head for another class count; cu3d's own
// checkpoints are left to the trainer untouched.
#include <filesystem>

#include <gtest/gtest.h>
#include <unistd.h>

#include "apps/import_weights.h"
#include "cpu/golden.h"
#include "engine/safetensors.h"
#include "layers/import_keras.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using cu3d::testing::kGoldenDir;

// A preset at the golden fixtures' widths (tests/golden/make_golden.py).
ModelSpec scaled(const std::string& preset, int filter_div, int unit_div, int classes,
                 const Shape& input) {
  json config = preset_config(preset);
  for (json& layer : config["layers"]) {
    if (layer.contains("filters")) layer["filters"] = layer["filters"].get<int>() / filter_div;
    if (layer.contains("units") && layer["units"].is_number())
      layer["units"] = layer["units"].get<int>() / unit_div;
  }
  return {config, classes, input};
}

std::vector<float> values_of(const Module& model, const std::string& name) {
  for (const auto& [n, t] : model.named_parameters())
    if (n == name) return t.to_vector<float>();
  throw Error("no parameter " + name);
}

std::vector<float> stored(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t.to_vector<float>();
  throw Error("no tensor " + name);
}

TEST(ForeignWeights, KerasFileIsImportedWithANewHeadForAnotherClassCount) {
  const ModelSpec spec = scaled("keras3d", 4, 16, 7, {10, 16, 20, 3});
  auto model = build_model(spec.config, 7, spec.input);
  const std::vector<float> head = values_of(*model, "fc2.weight");
  const fs::path path = kGoldenDir / "keras3d.weights.h5";
  ::testing::internal::CaptureStdout();
  EXPECT_TRUE(init_from_foreign_weights(path, spec, *model, "dhwc"));
  EXPECT_NE(
      ::testing::internal::GetCapturedStdout().find("init: 10 of 12 tensors from Keras weights"),
      std::string::npos);
  EXPECT_EQ(values_of(*model, "fc2.weight"), head);
  const KerasWeights file = read_keras_h5(path);
  EXPECT_EQ(values_of(*model, "conv2b.bias"),
            file.layers.at(3).weights.at(1).second.to_vector<float>());
  EXPECT_THROW(init_from_foreign_weights(path, spec, *model, "whdc"), Error);
}

TEST(ForeignWeights, PytorchC3dStateDictIsImported) {
  const fs::path path = kGoldenDir / "c3d_pytorch.safetensors";
  const NamedTensors file = load_safetensors(path).tensors;
  const ModelSpec same = scaled("c3d", 32, 64, 5, {16, 32, 16, 3});
  auto model = build_model(same.config, 5, same.input);
  ::testing::internal::CaptureStdout();
  EXPECT_TRUE(init_from_foreign_weights(path, same, *model, "dhwc"));
  ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(values_of(*model, "fc8.weight"), stored(file, "fc8.weight"));
  EXPECT_EQ(values_of(*model, "conv5b.bias"), stored(file, "conv5b.bias"));

  const ModelSpec other = scaled("c3d", 32, 64, 3, {16, 32, 16, 3});
  auto fine_tuned = build_model(other.config, 3, other.input);
  const std::vector<float> head = values_of(*fine_tuned, "fc8.weight");
  ::testing::internal::CaptureStdout();
  EXPECT_TRUE(init_from_foreign_weights(path, other, *fine_tuned, "dhwc"));
  EXPECT_NE(::testing::internal::GetCapturedStdout().find("(new head)"), std::string::npos);
  EXPECT_EQ(values_of(*fine_tuned, "fc8.weight"), head);
  EXPECT_EQ(values_of(*fine_tuned, "fc7.weight"), stored(file, "fc7.weight"));
}

TEST(ForeignWeights, Cu3dCheckpointsAreLeftToTheTrainer) {
  const ModelSpec spec = scaled("keras3d", 4, 16, 5, {10, 16, 20, 3});
  auto saved = build_model(spec.config, 5, spec.input, /*seed=*/1);
  auto model = build_model(spec.config, 5, spec.input, /*seed=*/2);
  const fs::path path =
      fs::temp_directory_path() / fmt::format("cu3d_test_{}_own.safetensors", ::getpid());
  save_checkpoint(path, spec, *saved);
  const std::vector<float> before = values_of(*model, "conv1a.weight");
  EXPECT_FALSE(init_from_foreign_weights(path, spec, *model, "dhwc"));
  EXPECT_FALSE(init_from_foreign_weights(path.string() + ".other", spec, *model, "dhwc"));
  EXPECT_EQ(values_of(*model, "conv1a.weight"), before);
  fs::remove(path);
}

}  // namespace
}  // namespace cu3d::apps
