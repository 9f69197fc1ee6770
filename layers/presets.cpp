// The built-in model presets, written as the same JSON configs a user would write
// (docs/MODELS.md has their parameter counts and MACs).
#include <algorithm>

#include "layers/models.h"

namespace cu3d {
namespace {

using json = nlohmann::json;

json layer(const char* type, const std::string& name, json fields = json::object()) {
  fields["type"] = type;
  fields["name"] = name;
  return fields;
}

json conv3d(const std::string& name, int filters, json padding) {
  return layer("conv3d", name, {{"filters", filters}, {"kernel", 3}, {"padding", padding}});
}

json dense(const std::string& name, json units) {
  return layer("dense", name, {{"units", units}});
}

json dropout(const std::string& name, double rate) {
  return layer("dropout", name, {{"rate", rate}});
}

// The C3D trunk (Tran et al. 2015): eight 3x3x3 convolutions and five max-pools. `norm` adds the
// seed TensorFlow C3D's per-sample layer norm between each convolution and its ReLU;
// `pool_padding` is how pools 1-4 pad ("valid" in the original, "same" in the TensorFlow one), and
// `pool5_padding` pool5's, which turns 2x7x7 into 1x4x4 either way (explicit (0,1,1) or "same").
json c3d_trunk(bool norm, const json& pool_padding, const json& pool5_padding) {
  struct Block {
    const char* suffix;
    std::vector<std::pair<const char*, int>> convs;
  };
  const std::vector<Block> blocks = {{"1", {{"1a", 64}}},
                                     {"2", {{"2a", 128}}},
                                     {"3", {{"3a", 256}, {"3b", 256}}},
                                     {"4", {{"4a", 512}, {"4b", 512}}},
                                     {"5", {{"5a", 512}, {"5b", 512}}}};
  json layers = json::array();
  for (const Block& block : blocks) {
    for (const auto& [id, filters] : block.convs) {
      layers.push_back(conv3d(std::string("conv") + id, filters, 1));
      if (norm) layers.push_back(layer("layer_norm", std::string("norm") + id));
      layers.push_back(layer("relu", std::string("relu") + id));
    }
    const std::string pool = std::string("pool") + block.suffix;
    // pool1 keeps the time axis, so that early layers see the motion at full frame rate.
    const json window = pool == "pool1" ? json{1, 2, 2} : json(2);
    const json padding = pool == "pool5" ? pool5_padding : pool_padding;
    layers.push_back(layer("max_pool3d", pool, {{"window", window}, {"padding", padding}}));
  }
  layers.push_back(layer("flatten", "flatten"));
  return layers;
}

// fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> fc8 (logits).
void c3d_head(json& layers) {
  for (const char* id : {"6", "7"}) {
    layers.push_back(dense(std::string("fc") + id, 4096));
    layers.push_back(layer("relu", std::string("relu") + id));
    layers.push_back(dropout(std::string("drop") + id, 0.5));
  }
  layers.push_back(dense("fc8", "classes"));
}

json c3d() {
  json layers = c3d_trunk(false, "valid", json{0, 1, 1});
  c3d_head(layers);
  return {{"name", "c3d"},
          {"description", "C3D (Tran et al. 2015) as in the PyTorch port; PyTorch init"},
          {"input", {16, 112, 112, 3}},
          {"init", "pytorch"},
          {"layers", layers}};
}

// Xavier-uniform weights and zero biases, as the TensorFlow C3D's variables: Keras's default.
json c3d_ln() {
  json layers = c3d_trunk(true, "same", "same");
  c3d_head(layers);
  return {{"name", "c3d-ln"},
          {"description",
           "the TensorFlow C3D: each conv followed by per-sample layer norm, then ReLU; "
           "'same' pooling; train with Adam 1e-4"},
          {"input", {16, 112, 112, 3}},
          {"init", "keras"},
          {"layers", layers}};
}

// Keras's LeakyReLU() default slope.
constexpr double kKerasLeakySlope = 0.3;

json activation(const std::string& kind, const std::string& name) {
  if (kind == "leaky_relu")
    return layer("leaky_relu", name + "_leaky", {{"alpha", kKerasLeakySlope}});
  return layer(kind.c_str(), name + "_" + kind);
}

// One Keras block: Conv3D same + `first`, Conv3D same + `second`, MaxPool3D 3 same, dropout 0.25.
void keras_block(json& layers, int block, int filters, const std::string& first,
                 const std::string& second) {
  const std::string id = std::to_string(block);
  for (const auto& [suffix, act] : {std::pair{"a", first}, std::pair{"b", second}}) {
    const std::string conv = "conv" + id + suffix;
    layers.push_back(conv3d(conv, filters, "same"));
    layers.push_back(activation(act, conv));
  }
  layers.push_back(layer("max_pool3d", "pool" + id, {{"window", 3}, {"padding", "same"}}));
  layers.push_back(dropout("drop" + id, 0.25));
}

json keras_model(const std::string& name, const std::string& description, json layers) {
  return {{"name", name},
          {"description", description},
          {"input", {10, 32, 32, 1}},
          {"init", "keras"},
          {"layers", std::move(layers)}};
}

// The Keras 3D CNN (kcct-fujimotolab/3DCNN, 3dcnn.py). The "Conv3D 64" without
// padding cannot be Keras's "valid": two valid 3x3x3 convolutions on the 4 frames left after
// pool1 would leave none, so block 2 is "same", as in every published version of the script.
json keras3d() {
  json layers = json::array();
  keras_block(layers, 1, 32, "relu", "softmax");
  keras_block(layers, 2, 64, "relu", "softmax");
  layers.push_back(layer("flatten", "flatten"));
  layers.push_back(dense("fc1", 512));
  layers.push_back(layer("sigmoid", "fc1_sigmoid"));
  layers.push_back(dropout("drop_fc1", 0.5));
  layers.push_back(dense("fc2", "classes"));
  return keras_model("keras3d", "the Keras 3D CNN; softmax over channels after each block", layers);
}

// The first published version: ReLU everywhere.
json keras3d_relu() {
  json layers = json::array();
  keras_block(layers, 1, 32, "relu", "relu");
  keras_block(layers, 2, 64, "relu", "relu");
  layers.push_back(layer("flatten", "flatten"));
  layers.push_back(dense("fc1", 512));
  layers.push_back(layer("relu", "fc1_relu"));
  layers.push_back(dropout("drop_fc1", 0.5));
  layers.push_back(dense("fc2", "classes"));
  return keras_model("keras3d-relu", "the first Keras 3D CNN: ReLU everywhere", layers);
}

// 3dcnn_batchnorm.py / 3dcnn_leakyrelu.py: three blocks (32, 64, 64), Dense 512 ReLU, then
// BatchNormalization with Keras's defaults (momentum 0.99, epsilon 1e-3).
json keras3d_three_blocks(const std::string& name, const std::string& act,
                          const std::string& description) {
  json layers = json::array();
  keras_block(layers, 1, 32, act, act);
  keras_block(layers, 2, 64, act, act);
  keras_block(layers, 3, 64, act, act);
  layers.push_back(layer("flatten", "flatten"));
  layers.push_back(dense("fc1", 512));
  layers.push_back(layer("relu", "fc1_relu"));
  layers.push_back(layer("batch_norm", "fc1_bn", {{"momentum", 0.01}, {"eps", 1e-3}}));
  layers.push_back(dropout("drop_fc1", 0.5));
  layers.push_back(dense("fc2", "classes"));
  return keras_model(name, description, layers);
}

// 2dcnn.py: single 32x32 gray frames, to show what motion adds.
json cnn2d() {
  json layers = json::array();
  for (const auto& [block, filters] : {std::pair{1, 32}, std::pair{2, 64}}) {
    const std::string id = std::to_string(block);
    for (const auto& [suffix, padding] : {std::pair{"a", "same"}, std::pair{"b", "valid"}}) {
      const std::string conv = "conv" + id + suffix;
      layers.push_back(
          layer("conv2d", conv, {{"filters", filters}, {"kernel", 3}, {"padding", padding}}));
      layers.push_back(layer("relu", conv + "_relu"));
    }
    layers.push_back(layer("max_pool2d", "pool" + id, {{"window", 2}}));
    layers.push_back(dropout("drop" + id, 0.25));
  }
  layers.push_back(layer("flatten", "flatten"));
  layers.push_back(dense("fc1", 512));
  layers.push_back(layer("relu", "fc1_relu"));
  layers.push_back(dropout("drop_fc1", 0.5));
  layers.push_back(dense("fc2", "classes"));
  return {{"name", "cnn2d"},
          {"description", "the single-frame 2D baseline"},
          {"input", {32, 32, 1}},
          {"init", "keras"},
          {"layers", layers}};
}

struct Preset {
  const char* name;
  json (*make)();
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {"c3d", c3d},
      {"c3d-ln", c3d_ln},
      {"keras3d", keras3d},
      {"keras3d-bn",
       [] {
         return keras3d_three_blocks("keras3d-bn", "relu",
                                     "three Keras blocks with ReLU; batch norm after Dense 512");
       }},
      {"keras3d-leaky",
       [] {
         return keras3d_three_blocks(
             "keras3d-leaky", "leaky_relu",
             "three Keras blocks with leaky ReLU (0.3); batch norm after Dense 512");
       }},
      {"keras3d-relu", keras3d_relu},
      {"cnn2d", cnn2d},
  };
  return all;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Preset& preset : presets())
    names.emplace_back(preset.name);
  return names;
}

ModelConfig preset_config(const std::string& name) {
  for (const Preset& preset : presets())
    if (name == preset.name) return preset.make();
  throw Error(fmt::format("unknown model '{}': the presets are {}, or give a JSON config file",
                          name, fmt::join(preset_names(), ", ")));
}

}  // namespace cu3d
