#include "layers/export_onnx.h"

#include <algorithm>
#include <map>

#include "engine/protobuf_writer.h"
#include "kernels/shapes.h"

namespace cu3d {
namespace {

using json = nlohmann::json;

// ONNX IR version 8 is the one that goes with opset 17 (onnx/docs/Versioning.md).
constexpr int64_t kIrVersion = 8;
constexpr int kOnnxFloat = 1;  // TensorProto.DataType.FLOAT

enum class Layout { channels_last, channels_first, flat };

OnnxAttribute attribute(std::string name, OnnxAttribute::Kind kind) {
  OnnxAttribute a;
  a.name = std::move(name);
  a.kind = kind;
  return a;
}
OnnxAttribute int_attribute(std::string name, int64_t value) {
  OnnxAttribute a = attribute(std::move(name), OnnxAttribute::Kind::integer);
  a.i = value;
  return a;
}
OnnxAttribute ints_attribute(std::string name, std::vector<int64_t> values) {
  OnnxAttribute a = attribute(std::move(name), OnnxAttribute::Kind::integers);
  a.ints = std::move(values);
  return a;
}
OnnxAttribute float_attribute(std::string name, double value) {
  OnnxAttribute a = attribute(std::move(name), OnnxAttribute::Kind::real);
  a.f = float(value);
  return a;
}

// A window extent per axis as the config states it (validated by summarize_model already): one
// integer for all axes or one per axis; `fallback` when the key is absent.
std::vector<int> config_dims(const json& spec, const char* key, int rank,
                             const std::vector<int>& fallback) {
  if (!spec.contains(key)) return fallback;
  const json& value = spec[key];
  if (value.is_number_integer()) return std::vector<int>(rank, value.get<int>());
  return value.get<std::vector<int>>();
}

std::pair<Padding, std::vector<int>> config_padding(const json& spec, int rank) {
  if (!spec.contains("padding")) return {Padding::valid, std::vector<int>(rank, 0)};
  const json& value = spec["padding"];
  if (value.is_string())
    return {value == "same" ? Padding::same : Padding::valid, std::vector<int>(rank, 0)};
  return {Padding::explicit_, config_dims(spec, "padding", rank, {})};
}

// A 2D layer's per-axis values as 3D ones with depth `fill`, as layers/models.cpp does.
Dims3 to_dims3(const std::vector<int>& v, int fill) {
  return v.size() == 3 ? Dims3{v[0], v[1], v[2]} : Dims3{fill, v[0], v[1]};
}

// The spatial axes ONNX lists for a rank-`rank` window (depth dropped for 2D).
std::vector<int64_t> spatial(Dims3 d, int rank) {
  if (rank == 3) return {d.d, d.h, d.w};
  return {d.h, d.w};
}

std::vector<int64_t> concat(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Builds one model (or one ensemble member) layer by layer, tracking the running value's name,
// layout and channels-last per-sample shape.
class GraphBuilder {
 public:
  GraphBuilder(OnnxGraph& graph, const Module& model) : graph_(graph) {
    for (const auto& [name, tensor] : model.named_parameters())
      tensors_[name] = tensor;
    for (const auto& [name, tensor] : model.named_buffers())
      tensors_[name] = tensor;
  }

  // Adds the layers of `summary` reading the graph input, under `prefix` ("member0." or ""),
  // ending in a softmax named `output`.
  void add_member(const std::string& prefix, const ModelSummary& summary, const json& layers,
                  const std::string& output) {
    prefix_ = prefix;
    value_ = kOnnxInput;
    layout_ = Layout::channels_last;
    shape_ = summary.input;
    for (size_t i = 0; i < summary.layers.size(); ++i) {
      add_layer(summary.layers[i], layers[i]);
      shape_ = summary.layers[i].output;
    }
    add_node("Softmax", "probabilities", {value_}, {int_attribute("axis", -1)}, output);
  }

 private:
  std::string node_name(const std::string& base) const {
    std::string name = prefix_ + base;
    std::replace(name.begin(), name.end(), '.', '/');
    return name;
  }

  // Appends a node whose single output is named after it; returns that name.
  std::string add_node(const std::string& op, const std::string& base,
                       std::vector<std::string> inputs, std::vector<OnnxAttribute> attributes,
                       const std::string& output = "") {
    const std::string name = node_name(base);
    const std::string out = output.empty() ? name : output;
    graph_.nodes.push_back({op, name, std::move(inputs), {out}, std::move(attributes)});
    return out;
  }

  void apply(const std::string& op, const std::string& base, std::vector<std::string> extra = {},
             std::vector<OnnxAttribute> attributes = {}) {
    extra.insert(extra.begin(), value_);
    value_ = add_node(op, base, std::move(extra), std::move(attributes));
  }

  const Tensor& tensor(const std::string& layer, const char* field) const {
    const std::string name = prefix_ + layer + "." + field;
    const auto found = tensors_.find(name);
    CU3D_CHECK(found != tensors_.end(),
               "ONNX export: the model has no tensor '{}'; export a model built from its own "
               "config (a cu3d train checkpoint)",
               name);
    CU3D_CHECK(found->second.dtype() == DType::f32, "ONNX export: tensor '{}' is {}, not f32", name,
               dtype_name(found->second.dtype()));
    return found->second;
  }

  std::string add_initializer(const std::string& base, Shape dims, std::vector<float> values) {
    const std::string name = node_name(base);
    graph_.initializers.push_back({name, std::move(dims), std::move(values)});
    return name;
  }

  std::string initializer_from(const std::string& layer, const char* field, Shape dims = {}) {
    const Tensor& t = tensor(layer, field);
    return add_initializer(layer + "." + field, dims.empty() ? t.shape() : dims,
                           t.to_vector<float>());
  }

  int rank() const { return int(shape_.size()) - 1; }  // spatial axes of a non-flat value

  void to_layout(Layout want, const std::string& layer) {
    if (layout_ == Layout::flat || layout_ == want) return;
    std::vector<int64_t> perm = {0};
    if (want == Layout::channels_first) {
      perm.push_back(rank() + 1);
      for (int a = 1; a <= rank(); ++a)
        perm.push_back(a);
    } else {
      for (int a = 2; a <= rank() + 1; ++a)
        perm.push_back(a);
      perm.push_back(1);
    }
    apply("Transpose",
          layer + (want == Layout::channels_first ? "/to_channels_first" : "/to_channels_last"), {},
          {ints_attribute("perm", perm)});
    layout_ = want;
  }

  Dims3 input_dims3() const {
    return rank() == 3 ? Dims3{int(shape_[0]), int(shape_[1]), int(shape_[2])}
                       : Dims3{1, int(shape_[0]), int(shape_[1])};
  }

  // cu3d filters are (K, taps..., C); ONNX wants (K, C, taps...).
  std::string conv_weight(const std::string& layer) {
    const Tensor& w = tensor(layer, "weight");
    const Shape& s = w.shape();
    const int64_t k = s.front(), c = s.back(), taps = w.numel() / (k * c);
    const std::vector<float> in = w.to_vector<float>();
    std::vector<float> out(in.size());
    for (int64_t o = 0; o < k; ++o)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t i = 0; i < c; ++i)
          out[(o * c + i) * taps + t] = in[(o * taps + t) * c + i];
    Shape dims = {k, c};
    dims.insert(dims.end(), s.begin() + 1, s.end() - 1);
    return add_initializer(layer + ".weight", dims, std::move(out));
  }

  void add_conv(const LayerInfo& info, const json& spec, int r) {
    to_layout(Layout::channels_first, info.name);
    const std::vector<int> kernel = config_dims(spec, "kernel", r, {});
    const std::vector<int> stride = config_dims(spec, "stride", r, std::vector<int>(r, 1));
    const auto [padding, pad] = config_padding(spec, r);
    const Conv3dShape s =
        Conv3dShape::make(1, input_dims3(), int(shape_.back()), int(info.output.back()),
                          to_dims3(kernel, 1), to_dims3(stride, 1), padding, to_dims3(pad, 0));
    const std::string weight = conv_weight(info.name);
    const std::string bias = initializer_from(info.name, "bias");
    apply("Conv", info.name, {weight, bias},
          {ints_attribute("kernel_shape", spatial(s.kernel, r)),
           ints_attribute("strides", spatial(s.stride, r)),
           ints_attribute("pads", concat(spatial(s.pad_before, r), spatial(s.pad_after, r)))});
  }

  // ONNX MaxPool has no "same" mode that matches cu3d's split of the padding, and its ceil_mode
  // rules differ between runtimes, so the pads are explicit and the trailing pad is widened to
  // give exactly cu3d's output size with floor rounding. Padded positions never win a max in
  // either, but a window lying wholly in the padding is rejected by ONNX Runtime.
  void add_pool(const LayerInfo& info, const json& spec, int r) {
    to_layout(Layout::channels_first, info.name);
    const std::vector<int> window = config_dims(spec, "window", r, {});
    const std::vector<int> stride = config_dims(spec, "stride", r, window);
    const auto [padding, pad] = config_padding(spec, r);
    const bool ceil = spec.value("ceil_mode", false);
    const Pool3dShape s =
        Pool3dShape::make(1, input_dims3(), int(shape_.back()), to_dims3(window, 1),
                          to_dims3(stride, 1), padding, to_dims3(pad, 0), ceil);
    const std::vector<int64_t> in = spatial(s.in, r), out = spatial(s.out, r),
                               w = spatial(s.window, r), st = spatial(s.stride, r),
                               before = spatial(s.pad_before, r);
    std::vector<int64_t> after = spatial(s.pad_after, r);
    for (int a = 0; a < r; ++a) {
      after[a] = std::max(after[a], (out[a] - 1) * st[a] + w[a] - in[a] - before[a]);
      CU3D_CHECK(before[a] < w[a] && after[a] < w[a],
                 "ONNX export: layer '{}': padding {}+{} is not smaller than the window {} on "
                 "axis {}, which ONNX MaxPool does not allow; use less padding",
                 info.name, before[a], after[a], w[a], a);
    }
    apply("MaxPool", info.name, {},
          {ints_attribute("kernel_shape", w), ints_attribute("strides", st),
           ints_attribute("pads", concat(before, after))});
  }

  // Per-channel vectors broadcast against the running value: (C) channels-last or flat,
  // (C, 1, ...) channels-first.
  Shape channel_dims() const {
    Shape dims = {shape_.back()};
    if (layout_ == Layout::channels_first) dims.resize(size_t(rank()) + 1, 1);
    return dims;
  }

  void add_layer_norm(const LayerInfo& info, const json& spec) {
    const double eps = spec.value("eps", 1e-5);
    if (spec.value("variant", std::string("per_sample")) == "per_position") {
      to_layout(Layout::channels_last, info.name);
      apply("LayerNormalization", info.name,
            {initializer_from(info.name, "gamma"), initializer_from(info.name, "beta")},
            {int_attribute("axis", -1), float_attribute("epsilon", eps)});
      return;
    }
    // Over every axis but the batch: ONNX LayerNormalization would need a scale of the full
    // (D,H,W,C) shape, so the statistics are spelled out and the per-channel affine follows.
    std::vector<int64_t> axes;
    for (int64_t a = 1; a < int64_t(shape_.size()) + 1; ++a)
      axes.push_back(a);
    const std::string x = value_, n = info.name;
    const std::string mean =
        add_node("ReduceMean", n + "/mean", {x}, {ints_attribute("axes", axes)});
    const std::string centred = add_node("Sub", n + "/centred", {x, mean}, {});
    const std::string square = add_node("Mul", n + "/square", {centred, centred}, {});
    const std::string var =
        add_node("ReduceMean", n + "/variance", {square}, {ints_attribute("axes", axes)});
    const std::string eps_name = add_initializer(n + "/eps", {}, {float(eps)});
    const std::string shifted = add_node("Add", n + "/variance_eps", {var, eps_name}, {});
    const std::string stddev = add_node("Sqrt", n + "/stddev", {shifted}, {});
    value_ = add_node("Div", n + "/normalized", {centred, stddev}, {});
    apply("Mul", n + "/scaled", {initializer_from(n, "gamma", channel_dims())});
    apply("Add", n, {initializer_from(n, "beta", channel_dims())});
  }

  void add_batch_norm(const LayerInfo& info, const json& spec) {
    to_layout(Layout::channels_first, info.name);
    apply("BatchNormalization", info.name,
          {initializer_from(info.name, "gamma"), initializer_from(info.name, "beta"),
           initializer_from(info.name, "running_mean"), initializer_from(info.name, "running_var")},
          {float_attribute("epsilon", spec.value("eps", 1e-5))});
  }

  void add_layer(const LayerInfo& info, const json& spec) {
    const std::string& type = info.type;
    if (type == "conv3d" || type == "conv2d") return add_conv(info, spec, type == "conv3d" ? 3 : 2);
    if (type == "max_pool3d" || type == "max_pool2d")
      return add_pool(info, spec, type == "max_pool3d" ? 3 : 2);
    if (type == "relu") return apply("Relu", info.name);
    if (type == "sigmoid") return apply("Sigmoid", info.name);
    if (type == "leaky_relu")
      return apply("LeakyRelu", info.name, {},
                   {float_attribute("alpha", spec.value("alpha", 0.3))});
    if (type == "softmax")  // over channels, wherever they are
      return apply("Softmax", info.name, {},
                   {int_attribute("axis", layout_ == Layout::channels_first ? 1 : -1)});
    if (type == "layer_norm") return add_layer_norm(info, spec);
    if (type == "batch_norm") return add_batch_norm(info, spec);
    if (type == "dropout") return;  // the identity at inference
    if (type == "flatten") {
      to_layout(Layout::channels_last, info.name);
      apply("Flatten", info.name, {}, {int_attribute("axis", 1)});
      layout_ = Layout::flat;
      return;
    }
    CU3D_CHECK(type == "dense", "ONNX export: layer '{}' has type '{}', which the exporter lacks",
               info.name, type);
    apply("Gemm", info.name,
          {initializer_from(info.name, "weight"), initializer_from(info.name, "bias")},
          {int_attribute("transB", 1)});
  }

  OnnxGraph& graph_;
  std::map<std::string, Tensor> tensors_;
  std::string prefix_, value_;
  Layout layout_ = Layout::channels_last;
  Shape shape_;
};

ProtoWriter encode_attribute(const OnnxAttribute& a) {
  // AttributeProto.AttributeType: FLOAT 1, INT 2, INTS 7.
  ProtoWriter w;
  w.bytes(1, a.name);
  switch (a.kind) {
    case OnnxAttribute::Kind::real:
      w.float32(2, a.f).varint(20, 1);
      break;
    case OnnxAttribute::Kind::integer:
      w.varint(3, uint64_t(a.i)).varint(20, 2);
      break;
    case OnnxAttribute::Kind::integers:
      for (int64_t v : a.ints)
        w.varint(8, uint64_t(v));
      w.varint(20, 7);
      break;
  }
  return w;
}

ProtoWriter encode_node(const OnnxNode& node) {
  ProtoWriter w;
  for (const std::string& input : node.inputs)
    w.bytes(1, input);
  for (const std::string& output : node.outputs)
    w.bytes(2, output);
  w.bytes(3, node.name).bytes(4, node.op_type);
  for (const OnnxAttribute& a : node.attributes)
    w.message(5, encode_attribute(a));
  return w;
}

ProtoWriter encode_initializer(const OnnxInitializer& t) {
  ProtoWriter w;
  for (int64_t d : t.dims)
    w.varint(1, uint64_t(d));
  w.varint(2, kOnnxFloat).bytes(8, t.name);
  // raw_data is little-endian, as the values are in memory here.
  w.bytes(9, std::string_view(reinterpret_cast<const char*>(t.values.data()),
                              t.values.size() * sizeof(float)));
  return w;
}

// A float tensor value [N, dims...] with a symbolic batch axis.
ProtoWriter encode_value_info(const std::string& name, const Shape& dims) {
  ProtoWriter shape;
  shape.message(1, ProtoWriter().bytes(2, "N"));
  for (int64_t d : dims)
    shape.message(1, ProtoWriter().varint(1, uint64_t(d)));
  ProtoWriter tensor;
  tensor.varint(1, kOnnxFloat).message(2, shape);
  return std::move(ProtoWriter().bytes(1, name).message(2, ProtoWriter().message(1, tensor)));
}

}  // namespace

OnnxGraph build_onnx_graph(const ModelSpec& spec, const Module& model) {
  const ModelSummary summary = summarize_model(spec.config, spec.num_classes, spec.input);
  OnnxGraph graph;
  graph.name = summary.name;
  graph.input = summary.input;
  graph.classes = spec.num_classes;
  GraphBuilder builder(graph, model);
  const json& layers = spec.config["layers"];
  if (summary.members == 1) {
    builder.add_member("", summary, layers, kOnnxOutput);
    return graph;
  }
  std::vector<std::string> outputs;
  for (int m = 0; m < summary.members; ++m) {
    outputs.push_back(fmt::format("member{}/probabilities", m));
    builder.add_member(fmt::format("member{}.", m), summary, layers, outputs.back());
  }
  graph.nodes.push_back({"Mean", "ensemble_mean", outputs, {kOnnxOutput}, {}});
  return graph;
}

std::string encode_onnx_model(const OnnxGraph& graph) {
  ProtoWriter g;
  for (const OnnxNode& node : graph.nodes)
    g.message(1, encode_node(node));
  g.bytes(2, graph.name);
  for (const OnnxInitializer& t : graph.initializers)
    g.message(5, encode_initializer(t));
  g.message(11, encode_value_info(kOnnxInput, graph.input));
  g.message(12, encode_value_info(kOnnxOutput, {graph.classes}));
  ProtoWriter model;
  model.varint(1, kIrVersion).bytes(2, "cu3d").bytes(3, "0.1");
  model.message(7, g);
  model.message(8, ProtoWriter().bytes(1, "").varint(2, kOnnxOpset));
  for (const auto& [key, value] : graph.metadata)
    model.message(14, ProtoWriter().bytes(1, key).bytes(2, value));
  return model.take();
}

}  // namespace cu3d
