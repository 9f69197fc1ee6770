// The mapping half of the Keras import (layers/import_keras.h): the file's layers, matched by kind
// and order to the model's, their kernels transposed to our layout.
#include "layers/import_keras.h"

#include <array>
#include <map>
#include <optional>
#include <set>

#include "engine/autograd.h"

namespace cu3d {
namespace {

enum class Kind { conv3d, conv2d, dense, batch_norm };
constexpr std::array kKinds = {Kind::conv3d, Kind::conv2d, Kind::dense, Kind::batch_norm};

struct KindNames {
  const char* keras;                 // as Keras names the layer class
  const char* ours;                  // the config's layer type
  std::vector<const char*> tensors;  // our tensor names, in the order Keras stores the weights
};

const KindNames& names_of(Kind kind) {
  static const std::map<Kind, KindNames> names = {
      {Kind::conv3d, {"Conv3D", "conv3d", {"weight", "bias"}}},
      {Kind::conv2d, {"Conv2D", "conv2d", {"weight", "bias"}}},
      {Kind::dense, {"Dense", "dense", {"weight", "bias"}}},
      {Kind::batch_norm,
       {"BatchNormalization", "batch_norm", {"gamma", "beta", "running_mean", "running_var"}}}};
  return names.at(kind);
}

// A file layer's kind from its weights' ranks: a kernel and a bias, or BatchNormalization's four
// vectors (gamma, beta, moving mean, moving variance).
std::optional<Kind> file_kind(const KerasLayer& layer) {
  std::vector<size_t> ranks;
  for (const auto& [path, tensor] : layer.weights)
    ranks.push_back(tensor.shape().size());
  if (ranks == std::vector<size_t>{5, 1}) return Kind::conv3d;
  if (ranks == std::vector<size_t>{4, 1}) return Kind::conv2d;
  if (ranks == std::vector<size_t>{2, 1}) return Kind::dense;
  if (ranks == std::vector<size_t>{1, 1, 1, 1}) return Kind::batch_norm;
  return std::nullopt;
}

struct OurLayer {
  std::string name;
  Kind kind;
  Shape flatten_input;  // (D, H, W, C) of the flatten feeding this dense, else empty
};

std::vector<OurLayer> weight_layers(const ModelSummary& summary) {
  std::vector<OurLayer> layers;
  for (size_t i = 0; i < summary.layers.size(); ++i) {
    const LayerInfo& info = summary.layers[i];
    for (Kind kind : kKinds) {
      if (info.type != names_of(kind).ours) continue;
      const bool after_flatten = kind == Kind::dense && i >= 2 &&
                                 summary.layers[i - 1].type == "flatten" &&
                                 summary.layers[i - 2].output.size() == 4;
      layers.push_back({info.name, kind, after_flatten ? summary.layers[i - 2].output : Shape{}});
    }
  }
  return layers;
}

// A copy whose axis k is `t`'s axis axes[k].
Tensor permuted(const Tensor& t, const std::vector<int>& axes) {
  const Shape& in = t.shape();
  const size_t rank = in.size();
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t i = rank - 1; i > 0; --i)
    in_strides[i - 1] = in_strides[i] * in[i];
  Shape out(rank);
  std::vector<int64_t> strides(rank);  // the input stride of each output axis
  for (size_t k = 0; k < rank; ++k) {
    out[k] = in[axes[k]];
    strides[k] = in_strides[axes[k]];
  }
  Tensor result = Tensor::empty(out);
  const float* src = t.data<float>();
  float* dst = result.data<float>();
  std::vector<int64_t> index(rank, 0);
  const int64_t n = shape_numel(out);
  for (int64_t i = 0; i < n; ++i) {
    int64_t offset = 0;
    for (size_t k = 0; k < rank; ++k)
      offset += index[k] * strides[k];
    dst[i] = src[offset];
    for (size_t k = rank; k-- > 0 && ++index[k] == out[k];)
      index[k] = 0;
  }
  return result;
}

// Our (out, in) dense weight whose columns follow a flatten of (H, W, D, C), reordered for our
// flatten of (D, H, W, C); `dhwc` is that activation's shape.
Tensor columns_hwdc_to_dhwc(const Tensor& w, const Shape& dhwc) {
  const Tensor split = Tensor::empty({w.size(0), dhwc[1], dhwc[2], dhwc[0], dhwc[3]});
  std::copy_n(w.data<float>(), w.numel(), split.data<float>());
  const Tensor reordered = permuted(split, {0, 3, 1, 2, 4});
  Tensor result = Tensor::empty(w.shape());
  std::copy_n(reordered.data<float>(), w.numel(), result.data<float>());
  return result;
}

// The file's kernel in our layout; other weights keep theirs.
Tensor to_our_layout(const Tensor& kernel, const OurLayer& ours, KerasAxisOrder order) {
  const bool hwdc = order == KerasAxisOrder::hwdc;
  switch (ours.kind) {
    case Kind::conv3d:  // (kd, kh, kw, in, out), or (kh, kw, kd, in, out) -> (out, kd, kh, kw, in)
      return permuted(kernel, hwdc ? std::vector{4, 2, 0, 1, 3} : std::vector{4, 0, 1, 2, 3});
    case Kind::conv2d:  // (kh, kw, in, out) -> (out, kh, kw, in)
      return permuted(kernel, {3, 0, 1, 2});
    case Kind::dense: {  // (in, out) -> (out, in)
      const Tensor w = permuted(kernel, {1, 0});
      const bool reorder =
          hwdc && !ours.flatten_input.empty() && w.size(1) == shape_numel(ours.flatten_input);
      return reorder ? columns_hwdc_to_dhwc(w, ours.flatten_input) : w;
    }
    case Kind::batch_norm:
      return kernel;
  }
  return kernel;
}

struct Mapping {
  Mapping(const std::map<std::string, Tensor>& state, const KerasImportOptions& options)
      : state(state), options(options) {}

  const std::map<std::string, Tensor>& state;
  const KerasImportOptions& options;
  NamedTensors assigned;
  std::set<std::string> fresh;     // our tensors deliberately left as initialised (a new head)
  std::set<std::string> reported;  // our tensors of a layer a problem already names
  std::set<std::string> assigned_names;
  std::vector<std::string> problems;

  // One file layer into one of ours; `head` is the model's last Dense.
  void match(const KerasLayer& file, const OurLayer& ours, bool head) {
    const std::vector<const char*>& tensors = names_of(ours.kind).tensors;
    NamedTensors converted;
    std::vector<std::string> misfits;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& [path, stored] = file.weights[i];
      const std::string name = ours.name + "." + tensors[i];
      const auto target = state.find(name);
      if (target == state.end()) {
        problems.push_back(fmt::format("the model has no '{}' for dataset '{}'", name, path));
        continue;
      }
      const Tensor value = i == 0 ? to_our_layout(stored, ours, options.order) : stored;
      if (value.shape() != target->second.shape()) {
        const std::string ours_as =
            value.shape() == stored.shape()
                ? ""
                : fmt::format(" (as {} in our layout)", shape_str(value.shape()));
        misfits.push_back(fmt::format("dataset '{}' {}{} does not fit '{}' {}", path,
                                      shape_str(stored.shape()), ours_as, name,
                                      shape_str(target->second.shape())));
      }
      converted.emplace_back(name, value);
    }
    if (head && options.new_head && !misfits.empty()) {
      for (const auto& [name, value] : converted)
        fresh.insert(name);
      return;
    }
    for (std::string& misfit : misfits)
      problems.push_back(misfit +
                         (head ? "; to fine-tune on another class count, take a new head" : ""));
    for (const auto& [name, value] : converted)
      (misfits.empty() ? assigned_names : reported).insert(name);
    if (misfits.empty()) assigned.insert(assigned.end(), converted.begin(), converted.end());
  }
};

std::string joined_names(const std::vector<std::string>& names) {
  return names.empty() ? "" : fmt::format(" ({})", fmt::join(names, ", "));
}

}  // namespace

KerasAxisOrder parse_keras_axis_order(const std::string& text, const std::string& flag) {
  if (text == "dhwc") return KerasAxisOrder::dhwc;
  if (text == "hwdc") return KerasAxisOrder::hwdc;
  throw Error(fmt::format(
      "{} '{}': give dhwc (clips as (depth, height, width, channels), our order) or hwdc (as the "
      "Keras 3D CNN scripts feed them)",
      flag, text));
}

NamedTensors map_keras_weights(const KerasWeights& file, const ModelSpec& spec,
                               const NamedTensors& state, const KerasImportOptions& options) {
  const ModelSummary summary = summarize_model(spec.config, spec.num_classes, spec.input);
  CU3D_CHECK(summary.members == 1,
             "import {}: model '{}' is an ensemble of {}; import Keras weights into one model",
             file.source, summary.name, summary.members);
  const std::map<std::string, Tensor> by_name(state.begin(), state.end());
  Mapping mapping(by_name, options);

  std::map<Kind, std::vector<const KerasLayer*>> theirs;
  for (const KerasLayer& layer : file.layers) {
    if (const auto kind = file_kind(layer)) {
      theirs[*kind].push_back(&layer);
      continue;
    }
    std::vector<std::string> shapes;
    for (const auto& [path, tensor] : layer.weights)
      shapes.push_back(fmt::format("'{}' {}", path, shape_str(tensor.shape())));
    mapping.problems.push_back(fmt::format(
        "layer '{}' holds {}: not a Conv3D, Conv2D or Dense with bias, nor a BatchNormalization "
        "with scale and offset (the layers cu3d imports)",
        layer.name, fmt::join(shapes, ", ")));
  }
  std::map<Kind, std::vector<OurLayer>> ours;
  for (OurLayer& layer : weight_layers(summary))
    ours[layer.kind].push_back(std::move(layer));

  for (Kind kind : kKinds) {
    const std::vector<const KerasLayer*>& file_layers = theirs[kind];
    const std::vector<OurLayer>& model_layers = ours[kind];
    if (file_layers.size() != model_layers.size()) {
      std::vector<std::string> file_names, model_names;
      for (const KerasLayer* layer : file_layers)
        file_names.push_back(layer->name);
      for (const OurLayer& layer : model_layers)
        model_names.push_back(layer.name);
      mapping.problems.push_back(fmt::format(
          "the file has {} {} layer(s){} and model '{}' {}{}: import into the model the weights "
          "were trained with",
          file_names.size(), names_of(kind).keras, joined_names(file_names), summary.name,
          model_names.size(), joined_names(model_names)));
      for (const OurLayer& layer : model_layers)
        for (const char* tensor : names_of(kind).tensors)
          mapping.reported.insert(layer.name + "." + tensor);
      continue;
    }
    for (size_t k = 0; k < file_layers.size(); ++k)
      mapping.match(*file_layers[k], model_layers[k],
                    kind == Kind::dense && k + 1 == model_layers.size());
  }

  for (const auto& [name, tensor] : state)
    if (!mapping.assigned_names.count(name) && !mapping.fresh.count(name) &&
        !mapping.reported.count(name))
      mapping.problems.push_back(fmt::format("'{}' {} has no counterpart in the Keras file", name,
                                             shape_str(tensor.shape())));
  CU3D_CHECK(mapping.problems.empty(), "import {}: {} problem(s):{}", file.source,
             mapping.problems.size(), list_problems(mapping.problems));
  return mapping.assigned;
}

void import_keras(const std::filesystem::path& path, const ModelSpec& spec, Module& model,
                  const KerasImportOptions& options) {
  const KerasWeights file = read_keras_h5(path);
  NamedTensors state = model.named_parameters();
  const NamedTensors buffers = model.named_buffers();
  state.insert(state.end(), buffers.begin(), buffers.end());
  const NamedTensors values = map_keras_weights(file, spec, state, options);
  const std::map<std::string, Tensor> targets(state.begin(), state.end());
  autograd::NoGradGuard no_grad;
  for (const auto& [name, value] : values)
    Tensor(targets.at(name)).copy_from(value);
}

}  // namespace cu3d
