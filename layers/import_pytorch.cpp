#include "layers/import_pytorch.h"

#include <map>
#include <set>

#include "engine/autograd.h"
#include "engine/safetensors.h"

namespace cu3d {
namespace {

// PyTorch C3D layer names and ours; C3D's paper calls the single conv of blocks 1 and 2 "a".
constexpr std::pair<const char*, const char*> kLayers[] = {
    {"conv1", "conv1a"},  {"conv2", "conv2a"},  {"conv3a", "conv3a"}, {"conv3b", "conv3b"},
    {"conv4a", "conv4a"}, {"conv4b", "conv4b"}, {"conv5a", "conv5a"}, {"conv5b", "conv5b"},
    {"fc6", "fc6"},       {"fc7", "fc7"},       {"fc8", "fc8"}};

// (Cout, Cin, KD, KH, KW) -> (Cout, KD, KH, KW, Cin).
Tensor conv_weight_to_channels_last(const Tensor& w) {
  const Shape& s = w.shape();
  const int64_t out = s[0], in = s[1], taps = s[2] * s[3] * s[4];
  Tensor result = Tensor::empty({out, s[2], s[3], s[4], in});
  const float* src = w.data<float>();
  float* dst = result.data<float>();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      for (int64_t t = 0; t < taps; ++t)
        dst[(o * taps + t) * in + i] = src[(o * in + i) * taps + t];
  return result;
}

// A dense weight whose columns follow PyTorch's flatten of (C, D, H, W), reordered for our
// flatten of (D, H, W, C); `dhwc` is that activation's shape.
Tensor dense_columns_to_channels_last(const Tensor& w, const Shape& dhwc) {
  const int64_t rows = w.size(0), channels = dhwc.back();
  const int64_t positions = shape_numel(dhwc) / channels;
  Tensor result = Tensor::empty(w.shape());
  const float* src = w.data<float>();
  float* dst = result.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t p = 0; p < positions; ++p)
        dst[(r * positions + p) * channels + c] = src[(r * channels + c) * positions + p];
  return result;
}

// The per-sample shape fc6 flattens, from shape inference: the output of the layer before the
// flatten that feeds fc6.
Shape fc6_input_shape(const ModelSpec& spec) {
  const ModelSummary summary = summarize_model(spec.config, spec.num_classes, spec.input);
  for (std::size_t i = 2; i < summary.layers.size(); ++i)
    if (summary.layers[i].name == "fc6" && summary.layers[i - 1].type == "flatten")
      return summary.layers[i - 2].output;
  throw Error(fmt::format(
      "import_pytorch_c3d: model '{}' has no fc6 fed by a flatten layer; import into the c3d "
      "preset or a variant with its layer names",
      summary.name));
}

// The file's tensor in our layout, or an undefined tensor with a problem noted.
Tensor converted(const std::string& key, const Tensor& stored, const Shape& fc6_input,
                 std::vector<std::string>& problems) {
  const Tensor w = stored.to(DType::f32);
  if (key.starts_with("conv") && key.ends_with(".weight")) {
    if (w.dim() == 5) return conv_weight_to_channels_last(w);
    problems.push_back(fmt::format("'{}' is {}, not a 3D convolution's (Cout, Cin, KD, KH, KW)",
                                   key, shape_str(w.shape())));
    return Tensor();
  }
  if (key == "fc6.weight") {
    if (w.dim() == 2 && w.size(1) == shape_numel(fc6_input))
      return dense_columns_to_channels_last(w, fc6_input);
    problems.push_back(
        fmt::format("'fc6.weight' is {}, but the model flattens {} ({} features) into fc6",
                    shape_str(w.shape()), shape_str(fc6_input), shape_numel(fc6_input)));
    return Tensor();
  }
  return w;
}

}  // namespace

NamedTensors map_pytorch_c3d(const NamedTensors& file, const ModelSpec& spec,
                             const NamedTensors& params, bool new_head, const std::string& source) {
  const Shape fc6_input = fc6_input_shape(spec);
  const std::map<std::string, Tensor> ours(params.begin(), params.end());
  const std::map<std::string, Tensor> stored(file.begin(), file.end());

  std::vector<std::string> problems;
  NamedTensors values;  // (model parameter, converted value)
  std::set<std::string> consumed, assigned;
  for (const auto& [theirs, our_layer] : kLayers) {
    const bool head = std::string(our_layer) == "fc8";
    for (const char* suffix : {".weight", ".bias"}) {
      const std::string key = theirs + std::string(suffix), name = our_layer + std::string(suffix);
      consumed.insert(key);
      if (head && new_head) continue;
      const auto found = stored.find(key);
      const auto target = ours.find(name);
      if (found == stored.end()) {
        problems.push_back(fmt::format("missing key '{}' (for '{}')", key, name));
        continue;
      }
      if (target == ours.end()) {
        problems.push_back(fmt::format("the model has no '{}' for the file's '{}'", name, key));
        continue;
      }
      assigned.insert(name);
      const Tensor value = converted(key, found->second, fc6_input, problems);
      if (!value.defined()) continue;
      if (value.shape() != target->second.shape()) {
        problems.push_back(
            fmt::format("'{}' {} (as {} in our layout) does not fit '{}' {}{}", key,
                        shape_str(found->second.shape()), shape_str(value.shape()), name,
                        shape_str(target->second.shape()),
                        head ? "; to fine-tune on other classes, take a new head" : ""));
        continue;
      }
      values.emplace_back(name, value);
    }
  }
  for (const auto& [key, tensor] : stored)
    if (!consumed.count(key))
      problems.push_back(fmt::format("unexpected key '{}' {}", key, shape_str(tensor.shape())));
  for (const auto& [name, tensor] : ours)
    if (!assigned.count(name) && !(new_head && name.starts_with("fc8.")))
      problems.push_back(fmt::format("'{}' has no counterpart in the PyTorch C3D", name));
  CU3D_CHECK(problems.empty(), "import_pytorch_c3d {}: {} problem(s):{}", source, problems.size(),
             list_problems(problems));
  return values;
}

void import_pytorch_c3d(const std::filesystem::path& path, const ModelSpec& spec, Module& model,
                        bool new_head) {
  const NamedTensors params = model.named_parameters();
  const NamedTensors values =
      map_pytorch_c3d(load_safetensors(path).tensors, spec, params, new_head, path.string());
  const std::map<std::string, Tensor> targets(params.begin(), params.end());
  autograd::NoGradGuard no_grad;
  for (const auto& [name, value] : values)
    Tensor(targets.at(name)).copy_from(value);
}

}  // namespace cu3d
