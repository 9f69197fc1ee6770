// Model configs and presets: shape inference and the published parameter/MAC counts, every preset
// built and run forward and backward on the CPU (C3D at reduced width so the suite stays fast
// under ASan), config errors, dropout seeds, the ensemble, the summary and the DOT diagram.
#include <cmath>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <unistd.h>

#include "cpu/error_testing.h"
#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/loss.h"
#include "engine/rng.h"
#include "layers/basic.h"
#include "layers/models.h"

namespace cu3d {
namespace {

using json = nlohmann::json;

// C3D with 101 classes: 27,655,936 in the eight convolutions, 33,558,528 + 16,781,312 in fc6
// and fc7, 413,797 in fc8.
constexpr int64_t kC3dParameters = 78'409'573;
// 38,496,632,832 in the convolutions plus 50,745,344 in the dense layers.
constexpr int64_t kC3dMacs = 38'547'378'176;

const LayerInfo& find_layer(const ModelSummary& s, const std::string& name) {
  for (const LayerInfo& layer : s.layers)
    if (layer.name == name) return layer;
  throw Error("no layer " + name);
}

// The config with every conv's filters and every hidden dense layer's units divided by
// `factor`: the same layers and shapes, at a width the CPU runs in milliseconds.
json narrowed(json config, int factor) {
  for (json& layer : config["layers"]) {
    if (layer.contains("filters")) layer["filters"] = layer["filters"].get<int>() / factor;
    if (layer.contains("units") && layer["units"].is_number())
      layer["units"] = layer["units"].get<int>() / factor;
  }
  return config;
}

using testing::error_of;

TEST(Models, C3dHasThePublishedParameterAndMacCounts) {
  const ModelSummary s = summarize_model(preset_config("c3d"), 101);
  EXPECT_EQ(s.input, (Shape{16, 112, 112, 3}));
  EXPECT_EQ(s.parameters, kC3dParameters);
  EXPECT_EQ(s.macs, kC3dMacs);
  EXPECT_EQ(find_layer(s, "pool1").output, (Shape{16, 56, 56, 64}));
  EXPECT_EQ(find_layer(s, "pool4").output, (Shape{2, 7, 7, 512}));
  EXPECT_EQ(find_layer(s, "pool5").output, (Shape{1, 4, 4, 512}));
  EXPECT_EQ(find_layer(s, "flatten").output, (Shape{8192}));
  EXPECT_EQ(find_layer(s, "fc6").parameters, 8192 * 4096 + 4096);
  EXPECT_EQ(find_layer(s, "conv2a").macs, int64_t(16) * 56 * 56 * 128 * 27 * 64);
  std::vector<std::string> weighted;
  for (const LayerInfo& layer : s.layers)
    if (layer.parameters) weighted.push_back(layer.name);
  EXPECT_EQ(weighted,
            (std::vector<std::string>{"conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b",
                                      "conv5a", "conv5b", "fc6", "fc7", "fc8"}));
}

TEST(Models, C3dLayerNormAddsOnlyScaleAndOffset) {
  const ModelSummary s = summarize_model(preset_config("c3d-ln"), 101);
  // 2 x (64 + 128 + 2*256 + 4*512) layer-norm scales and offsets on top of C3D.
  EXPECT_EQ(s.parameters, kC3dParameters + 5504);
  EXPECT_EQ(s.macs, kC3dMacs);
  EXPECT_EQ(find_layer(s, "pool5").output, (Shape{1, 4, 4, 512}));
  EXPECT_EQ(find_layer(s, "norm3b").parameters, 512);
}

TEST(Models, KerasAndTwoDimensionalPresetShapes) {
  const ModelSummary keras = summarize_model(preset_config("keras3d"), 101);
  EXPECT_EQ(keras.input, (Shape{10, 32, 32, 1}));
  EXPECT_EQ(find_layer(keras, "pool1").output, (Shape{4, 11, 11, 32}));
  EXPECT_EQ(find_layer(keras, "flatten").output, (Shape{2 * 4 * 4 * 64}));
  EXPECT_EQ(keras.parameters, 1'295'493);
  const ModelSummary bn = summarize_model(preset_config("keras3d-bn"), 101);
  EXPECT_EQ(find_layer(bn, "flatten").output, (Shape{1 * 2 * 2 * 64}));
  EXPECT_EQ(find_layer(bn, "fc1_bn").buffers, 1024);
  const ModelSummary color = summarize_model(preset_config("keras3d"), 10, {10, 32, 32, 3});
  EXPECT_EQ(find_layer(color, "conv1a").parameters, 27 * 3 * 32 + 32);
  const ModelSummary flat = summarize_model(preset_config("cnn2d"), 101);
  EXPECT_EQ(find_layer(flat, "conv1b").output, (Shape{30, 30, 32}));
  EXPECT_EQ(find_layer(flat, "flatten").output, (Shape{6 * 6 * 64}));
}

// Forward and backward through the built model on a batch of 2; every parameter gets a
// gradient of its shape and the first convolution's is not all zero.
void expect_trains(const json& config, const Shape& input, int classes) {
  SCOPED_TRACE(config["name"].get<std::string>());
  auto model = build_model(config, classes, input, 7);
  const int64_t counted = summarize_model(config, classes, input).parameters;
  EXPECT_EQ(model->parameter_count(), counted) << "the summary counts what the model holds";
  Generator gen(99);
  Shape batch_shape{2};
  batch_shape.insert(batch_shape.end(), input.begin(), input.end());
  const Tensor x = Tensor::uniform(batch_shape, 0.0, 1.0, gen);
  const Tensor labels = Tensor::from_vector<int32_t>({0, classes - 1}, {2});
  const Tensor logits = (*model)(x);
  ASSERT_EQ(logits.shape(), (Shape{2, classes}));
  for (float v : logits.to_vector<float>())
    ASSERT_TRUE(std::isfinite(v));
  autograd::backward(softmax_cross_entropy(logits, labels));
  const NamedTensors params = model->named_parameters();
  for (const auto& [name, p] : params) {
    ASSERT_TRUE(p.grad().defined()) << name << " received no gradient";
    EXPECT_EQ(p.grad().shape(), p.shape()) << name;
  }
  double first = 0;
  for (float g : params.front().second.grad().to_vector<float>())
    first += std::abs(g);
  EXPECT_GT(first, 0.0) << params.front().first;
  EXPECT_EQ(autograd::tape_size(), 0u) << "backward consumed the whole tape";
}

TEST(Models, EveryPresetRunsForwardAndBackward) {
  std::set<std::string> covered;
  for (const char* name : {"keras3d", "keras3d-bn", "keras3d-leaky", "keras3d-relu"}) {
    expect_trains(preset_config(name), {6, 16, 16, 1}, 5);
    covered.insert(name);
  }
  expect_trains(preset_config("cnn2d"), {32, 32, 1}, 5);
  covered.insert("cnn2d");
  // C3D needs 16 frames to reach pool5; at 1/16 of the width and 16x16 frames it runs in
  // milliseconds through exactly the preset's layers.
  for (const char* name : {"c3d", "c3d-ln"}) {
    expect_trains(narrowed(preset_config(name), 16), {16, 16, 16, 3}, 4);
    covered.insert(name);
  }
  const std::vector<std::string> all = preset_names();
  EXPECT_EQ(covered, std::set<std::string>(all.begin(), all.end())) << "a preset went untested";
}

TEST(Models, NamesParametersAfterTheLayers) {
  auto model = build_model(narrowed(preset_config("c3d"), 16), 4, {16, 16, 16, 3});
  const NamedTensors params = model->named_parameters();
  EXPECT_EQ(params.front().first, "conv1a.weight");
  EXPECT_EQ(params.front().second.shape(), (Shape{4, 3, 3, 3, 3}));
  EXPECT_EQ(params.back().first, "fc8.bias");
  auto bn = build_model(preset_config("keras3d-bn"), 3, {6, 16, 16, 1});
  EXPECT_EQ(bn->named_buffers().front().first, "fc1_bn.running_mean");
}

// What a dropout layer's first call makes of ones: its mask, scaled.
std::vector<float> first_mask(Module& dropout) {
  return dropout(Tensor::full({4096}, 1.0)).to_vector<float>();
}

Module& child(Module& model, const std::string& name) {
  for (const auto& [child_name, module] : model.children())
    if (child_name == name) return *module;
  throw Error("no child " + name);
}

TEST(Models, EachDropoutLayerHasItsOwnSeedFromTheModelSeed) {
  const json config = narrowed(preset_config("c3d"), 16);
  auto a = build_model(config, 4, {16, 16, 16, 3}, 1);
  auto again = build_model(config, 4, {16, 16, 16, 3}, 1);
  auto other = build_model(config, 4, {16, 16, 16, 3}, 2);
  const std::vector<float> drop6 = first_mask(child(*a, "drop6"));
  EXPECT_NE(drop6, first_mask(child(*a, "drop7"))) << "two layers, one mask";
  EXPECT_EQ(drop6, first_mask(child(*again, "drop6"))) << "same seed, same masks";
  EXPECT_NE(drop6, first_mask(child(*other, "drop6"))) << "another seed, other masks";
  EXPECT_EQ(a->named_parameters()[0].second.to_vector<float>(),
            again->named_parameters()[0].second.to_vector<float>());
}

json tiny_config() {
  return json::parse(R"({
    "name": "tiny", "input": [4, 8, 8, 2], "init": "keras",
    "layers": [
      {"type": "conv3d", "name": "conv1", "filters": 3, "kernel": [3, 3, 3], "padding": "same"},
      {"type": "leaky_relu", "name": "act1", "alpha": 0.1},
      {"type": "max_pool3d", "name": "pool1", "window": [2, 2, 2]},
      {"type": "flatten", "name": "flatten"},
      {"type": "dense", "name": "fc", "units": "classes"}]})");
}

TEST(Models, AUserConfigFileBuildsWithoutRecompiling) {
  const std::string path = fmt::format("/tmp/cu3d_test_{}_tiny.json", ::getpid());
  std::ofstream(path) << tiny_config().dump(2);
  const json config = load_model_config(path);
  std::remove(path.c_str());
  const ModelSummary s = summarize_model(config, 3);
  EXPECT_EQ(find_layer(s, "pool1").output, (Shape{2, 4, 4, 3}));
  EXPECT_EQ(s.parameters, (27 * 2 * 3 + 3) + (96 * 3 + 3));
  auto model = build_model(config, 3);
  Generator gen(5);
  autograd::NoGradGuard no_grad;
  EXPECT_EQ((*model)(Tensor::uniform({2, 4, 8, 8, 2}, -1.0, 1.0, gen)).shape(), (Shape{2, 3}));
  EXPECT_NE(error_of([] {
              load_model_config("/nonexistent/model.json");
            }).find("/nonexistent/model.json"),
            std::string::npos);
  EXPECT_NE(error_of([] { preset_config("c4d"); }).find("c3d, c3d-ln"), std::string::npos);
}

TEST(Models, ConfigErrorsNameTheLayerAndTheKey) {
  auto error_for = [](const std::function<void(json&)>& edit) {
    json config = tiny_config();
    edit(config);
    return error_of([&] { summarize_model(config, 3); });
  };
  const std::string typo = error_for([](json& c) { c["layers"][0]["filter"] = 3; });
  EXPECT_NE(typo.find("layer 0 'conv1'"), std::string::npos) << typo;
  EXPECT_NE(typo.find("unknown key 'filter'"), std::string::npos) << typo;
  const std::string type = error_for([](json& c) { c["layers"][1]["type"] = "gelu"; });
  EXPECT_NE(type.find("unknown layer type 'gelu'"), std::string::npos) << type;
  const std::string flat = error_for([](json& c) { c["layers"].erase(3); });
  EXPECT_NE(flat.find("flatten"), std::string::npos) << flat;
  const std::string twice = error_for([](json& c) { c["layers"][1]["name"] = "conv1"; });
  EXPECT_NE(twice.find("'conv1' is used twice"), std::string::npos) << twice;
  const std::string dotted = error_for([](json& c) { c["layers"][0]["name"] = "conv.1"; });
  EXPECT_NE(dotted.find("\"conv.1\""), std::string::npos) << dotted;
  const std::string end = error_for([](json& c) { c["layers"][4]["units"] = 7; });
  EXPECT_NE(end.find("not [3] class scores"), std::string::npos) << end;
  const std::string fit = error_for([](json& c) {
    c["layers"][0]["kernel"] = 9;
    c["layers"][0]["padding"] = "valid";
  });
  EXPECT_NE(fit.find("'conv1'"), std::string::npos) << fit;
  const std::string pad = error_for([](json& c) { c["layers"][2]["padding"] = "full"; });
  EXPECT_NE(pad.find("'pool1': 'padding'"), std::string::npos) << pad;
  const std::string huge = error_for([](json& c) { c["layers"][0]["filters"] = 1 << 30; });
  EXPECT_NE(huge.find("'filters' must be an integer"), std::string::npos) << huge;
  const std::string top = error_for([](json& c) { c["layer"] = json::array(); });
  EXPECT_NE(top.find("unknown key 'layer'"), std::string::npos) << top;
}

TEST(Models, EnsembleAveragesItsMembersProbabilities) {
  json config = tiny_config();
  config["ensemble"] = 3;
  auto model = build_model(config, 3, {}, 11);
  auto* ensemble = dynamic_cast<Ensemble*>(model.get());
  ASSERT_NE(ensemble, nullptr);
  ASSERT_EQ(ensemble->size(), 3u);
  EXPECT_EQ(model->named_parameters().front().first, "member0.conv1.weight");
  EXPECT_EQ(model->parameter_count(), 3 * summarize_model(tiny_config(), 3).parameters);
  EXPECT_EQ(summarize_model(config, 3).parameters, model->parameter_count());

  Generator gen(6);
  const Tensor x = Tensor::uniform({4, 4, 8, 8, 2}, -1.0, 1.0, gen);
  std::vector<float> expected(12, 0.0f);
  std::vector<std::vector<float>> each;
  {
    autograd::NoGradGuard no_grad;
    for (std::size_t m = 0; m < 3; ++m) {
      each.push_back(softmax(ensemble->member(m)(x)).to_vector<float>());
      for (int i = 0; i < 12; ++i)
        expected[i] += each.back()[i] / 3;
    }
  }
  EXPECT_NE(each[0], each[1]) << "members start from different weights";
  const std::vector<float> probs = (*model)(x).to_vector<float>();
  for (int i = 0; i < 12; ++i)
    EXPECT_NEAR(probs[i], expected[i], 1e-6) << i;
  for (int row = 0; row < 4; ++row)
    EXPECT_NEAR(probs[row * 3] + probs[row * 3 + 1] + probs[row * 3 + 2], 1.0, 1e-5);
  autograd::clear_tape();

  autograd::backward(ensemble->loss(x, Tensor::from_vector<int32_t>({0, 1, 2, 0}, {4})));
  for (const auto& [name, p] : model->named_parameters())
    EXPECT_TRUE(p.grad().defined()) << name;
  EXPECT_EQ(autograd::tape_size(), 0u);
}

TEST(Models, SummaryTableAndTrainingMemoryEstimate) {
  const ModelSummary s = summarize_model(preset_config("c3d"), 101);
  const std::string table = format_summary(s, {1, 16});
  EXPECT_NE(table.find("78409573 parameters (78.41 M)"), std::string::npos) << table;
  EXPECT_NE(table.find("38.547 GMAC"), std::string::npos) << table;
  EXPECT_NE(table.find("batch   16"), std::string::npos) << table;
  // Weights, gradients and two Adam moments, then per clip the kept activations, fused or not
  // (tests/cpu/test_memory_estimate.cpp checks the difference).
  for (bool fused : {true, false}) {
    EXPECT_EQ(s.training_bytes(0, fused), 16 * kC3dParameters);
    const int64_t per_clip = s.training_bytes(1, fused) - s.training_bytes(0, fused);
    EXPECT_EQ(s.training_bytes(16, fused), s.training_bytes(0, fused) + 16 * per_clip);
    // relu1a's output alone is 16x112x112x64 floats (49 MiB), and two more of that size are
    // gradients in flight.
    EXPECT_GT(per_clip, 3 * 16 * 112 * 112 * 64 * 4);
    EXPECT_LT(per_clip, 1ll << 30);
  }
}

TEST(Models, DotDiagramHasEveryLayerWithItsShape) {
  const ModelSummary s = summarize_model(preset_config("c3d"), 101);
  const std::string dot = model_dot(s);
  EXPECT_EQ(dot.rfind("digraph \"c3d\" {", 0), 0u) << dot;
  EXPECT_NE(dot.find("input\\n16x112x112x3"), std::string::npos);
  EXPECT_NE(dot.find("pool5 (max_pool3d)"), std::string::npos);
  EXPECT_NE(dot.find("1x4x4x512"), std::string::npos);
  EXPECT_NE(dot.find("fc8 (dense)\\n4096 -> 101\\n101"), std::string::npos) << dot;
  int64_t edges = 0;
  for (std::size_t at = dot.find(" -> layer"); at != std::string::npos;
       at = dot.find(" -> layer", at + 1))
    ++edges;
  EXPECT_EQ(edges, int64_t(s.layers.size())) << "one edge into each layer";
  EXPECT_EQ(dot.back(), '\n');
}

}  // namespace
}  // namespace cu3d
