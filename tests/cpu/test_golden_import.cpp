// Golden tests from independent implementations: weight files written by PyTorch and Keras
// (tests/golden/make_golden.py, committed with its output), imported by cu3d, must give the
// reference framework's logits on the same input to a relative error below 1e-4 (fp32).
#include <algorithm>
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "cpu/golden.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "layers/import_keras.h"
#include "layers/import_pytorch.h"

namespace cu3d {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using cu3d::testing::kGoldenDir;

// A preset at the reduced widths make_golden.py builds: filters / `filter_div`, numeric dense
// units / `unit_div`, 5 classes, on `input`.
ModelSpec scaled(const std::string& preset, int filter_div, int unit_div, const Shape& input) {
  json config = preset_config(preset);
  for (json& layer : config["layers"]) {
    if (layer.contains("filters")) layer["filters"] = layer["filters"].get<int>() / filter_div;
    if (layer.contains("units") && layer["units"].is_number())
      layer["units"] = layer["units"].get<int>() / unit_div;
  }
  return {config, 5, input};
}

// max |logits of sample 0 - logits of sample 1| / max |logits|: how much the logits depend on
// the input rather than on the last biases alone.
double input_dependence(const Tensor& logits) {
  const std::vector<float> v = logits.to_vector<float>();
  const size_t classes = size_t(logits.size(1));
  double diff = 0, scale = 0;
  for (size_t c = 0; c < classes; ++c) {
    diff = std::max(diff, std::abs(double(v[c]) - v[classes + c]));
    scale = std::max({scale, std::abs(double(v[c])), std::abs(double(v[classes + c]))});
  }
  return diff / scale;
}

// max |ours - reference| / max |reference| over all logits.
double relative_error(const Tensor& ours, const Tensor& reference) {
  const std::vector<float> a = ours.to_vector<float>(), b = reference.to_vector<float>();
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  EXPECT_GT(scale, 0.0) << "reference logits are all zero";
  return diff / scale;
}

// Runs the imported model on the fixture's input and compares with the framework's logits.
void expect_reference_logits(Module& model, const std::string& io_name) {
  const SafetensorsContents io = load_safetensors(kGoldenDir / io_name);
  ASSERT_EQ(io.tensors.size(), 2u);
  ASSERT_EQ(io.tensors[0].first, "input");
  ASSERT_EQ(io.tensors[1].first, "logits");
  autograd::NoGradGuard no_grad;
  model.eval();
  const Tensor logits = model(io.tensors[0].second);
  ASSERT_EQ(logits.shape(), io.tensors[1].second.shape());
  ASSERT_EQ(logits.size(0), 2) << "two samples, so the test sees the logits depend on the input";
  EXPECT_GT(input_dependence(io.tensors[1].second), 0.05)
      << io_name << ": the reference logits barely depend on the input; regenerate the fixture "
      << "with larger weights (tests/golden/make_golden.py)";
  const double error = relative_error(logits, io.tensors[1].second);
  ::testing::Test::RecordProperty("relative_error", fmt::format("{:.2e}", error));
  EXPECT_LT(error, 1e-4) << io_name;
}

// The model as built, with weights from the seed: the import must replace them.
std::shared_ptr<Module> fresh_model(const ModelSpec& spec) {
  return build_model(spec.config, spec.num_classes, spec.input, /*seed=*/99);
}

TEST(GoldenImport, PytorchC3dGivesPytorchsLogits) {
  const ModelSpec spec = scaled("c3d", 32, 64, {16, 32, 16, 3});
  auto model = fresh_model(spec);
  import_pytorch_c3d(kGoldenDir / "c3d_pytorch.safetensors", spec, *model);
  expect_reference_logits(*model, "c3d_pytorch_io.safetensors");
}

TEST(GoldenImport, Keras3WeightsGiveKerasLogits) {
  const ModelSpec spec = scaled("keras3d", 4, 16, {10, 16, 20, 3});
  auto model = fresh_model(spec);
  import_keras(kGoldenDir / "keras3d.weights.h5", spec, *model);
  expect_reference_logits(*model, "keras3d_io.safetensors");
}

TEST(GoldenImport, Keras2LayoutOfTheSameWeightsGivesTheSameLogits) {
  const ModelSpec spec = scaled("keras3d", 4, 16, {10, 16, 20, 3});
  auto model = fresh_model(spec);
  import_keras(kGoldenDir / "keras3d_keras2.h5", spec, *model);
  expect_reference_logits(*model, "keras3d_io.safetensors");
}

TEST(GoldenImport, WholeModelSavedOnHwdcClipsGivesKerasLogits) {
  const ModelSpec spec = scaled("keras3d", 4, 16, {10, 16, 20, 3});
  auto model = fresh_model(spec);
  import_keras(kGoldenDir / "keras3d_hwdc_model.h5", spec, *model, {KerasAxisOrder::hwdc});
  expect_reference_logits(*model, "keras3d_hwdc_io.safetensors");
}

TEST(GoldenImport, BatchNormStatisticsArriveWithTheWeights) {
  const ModelSpec spec = scaled("keras3d-bn", 4, 16, {10, 16, 20, 3});
  auto model = fresh_model(spec);
  import_keras(kGoldenDir / "keras3d_bn.weights.h5", spec, *model);
  expect_reference_logits(*model, "keras3d_bn_io.safetensors");
}

TEST(GoldenImport, Conv2dBaselineGivesKerasLogits) {
  const ModelSpec spec = scaled("cnn2d", 4, 16, {20, 20, 1});
  auto model = fresh_model(spec);
  import_keras(kGoldenDir / "cnn2d.weights.h5", spec, *model);
  expect_reference_logits(*model, "cnn2d_io.safetensors");
}

}  // namespace
}  // namespace cu3d
