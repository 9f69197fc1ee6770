// Model configs: validation and shape inference (one "plan" per layer type), building, summary,
// DOT diagram, and the ensemble. Configs are parsed as hostile: every value is type- and
// range-checked, and every error names the model, the layer and the key.
#include "layers/models.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>

#include <fmt/ranges.h>

#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "layers/basic.h"
#include "layers/conv_block.h"
#include "layers/norm.h"

namespace cu3d {
namespace {

using json = nlohmann::json;

// Bounds that keep every product of sizes far from int64 overflow; real models are far below.
constexpr int64_t kMaxExtent = 1 << 20;      // one axis, a channel count, a unit count
constexpr int64_t kMaxElements = 1ll << 40;  // one per-sample activation or parameter tensor
constexpr int64_t kMaxMacs = 1ll << 50;      // one layer's forward MACs per sample

// Seeds of the dropout layers and of ensemble members are drawn from generators seeded apart from
// the initialisation stream (Generator(seed)), so adding a dropout layer changes no weight.
constexpr uint64_t kDropoutStream = 0x64726f706f7574ull;  // "dropout"
constexpr uint64_t kMemberStream = 0x6d656d626572ull;     // "member"

// What planning one layer needs.
struct Context {
  std::string where;  // for error messages: "model 'c3d', layer 4 'conv2a'"
  const json& spec;
  Shape in;  // per-sample input shape
  int num_classes;
  InitStyle init;
};

std::string dims_str(const Shape& shape) {
  return fmt::format("{}", fmt::join(shape, "x"));
}

void check_keys(const Context& ctx, std::initializer_list<const char*> allowed) {
  for (const auto& item : ctx.spec.items()) {
    const std::string& key = item.key();
    const bool known =
        key == "type" || key == "name" ||
        std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
    CU3D_CHECK(known, "{}: unknown key '{}' (this layer takes: type, name{}{})", ctx.where, key,
               allowed.size() ? ", " : "", fmt::join(allowed, ", "));
  }
}

int64_t read_int(const json& value, const std::string& what, int64_t low, int64_t high) {
  CU3D_CHECK(
      value.is_number_integer() && value.get<int64_t>() >= low && value.get<int64_t>() <= high,
      "{} must be an integer in [{}, {}], got {}", what, low, high, value.dump());
  return value.get<int64_t>();
}

double read_number(const Context& ctx, const char* key, double fallback, double low, double high) {
  if (!ctx.spec.contains(key)) return fallback;
  const json& value = ctx.spec[key];
  CU3D_CHECK(value.is_number() && value.get<double>() >= low && value.get<double>() <= high,
             "{}: '{}' must be a number in [{}, {}], got {}", ctx.where, key, low, high,
             value.dump());
  return value.get<double>();
}

// An extent per axis: one integer for all axes, or a list of `rank` integers.
std::vector<int> read_dims(const Context& ctx, const char* key, int rank, int low) {
  const json& value = ctx.spec[key];
  const std::string what = fmt::format("{}: '{}'", ctx.where, key);
  if (value.is_number_integer())
    return std::vector<int>(rank, int(read_int(value, what, low, kMaxExtent)));
  CU3D_CHECK(value.is_array() && int(value.size()) == rank,
             "{} must be an integer or a list of {} integers, got {}", what, rank, value.dump());
  std::vector<int> dims;
  for (const json& v : value)
    dims.push_back(int(read_int(v, what, low, kMaxExtent)));
  return dims;
}

std::vector<int> read_dims_or(const Context& ctx, const char* key, int rank,
                              const std::vector<int>& fallback, int low) {
  return ctx.spec.contains(key) ? read_dims(ctx, key, rank, low) : fallback;
}

// "same", "valid", or explicit zero padding (one integer or one per axis) before and after.
std::pair<Padding, std::vector<int>> read_padding(const Context& ctx, int rank) {
  if (!ctx.spec.contains("padding")) return {Padding::valid, std::vector<int>(rank, 0)};
  const json& value = ctx.spec["padding"];
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    CU3D_CHECK(text == "same" || text == "valid",
               "{}: 'padding' must be \"same\", \"valid\" or explicit amounts, got \"{}\"",
               ctx.where, text);
    return {text == "same" ? Padding::same : Padding::valid, std::vector<int>(rank, 0)};
  }
  return {Padding::explicit_, read_dims(ctx, "padding", rank, 0)};
}

std::string padding_detail(Padding padding, const std::vector<int>& pad) {
  if (padding == Padding::same) return "same";
  if (padding == Padding::valid) return "valid";
  return "pad " + dims_str(Shape(pad.begin(), pad.end()));
}

void check_rank(const Context& ctx, int rank, const char* layout) {
  CU3D_CHECK(int(ctx.in.size()) == rank, "{}: needs a {} input per sample, got {}", ctx.where,
             layout, shape_str(ctx.in));
}

// The product of `sizes`, which must stay within `limit`.
int64_t checked_product(const Shape& sizes, const std::string& where, const char* what,
                        int64_t limit = kMaxElements) {
  int64_t product = 1;
  for (int64_t size : sizes)
    CU3D_CHECK(!__builtin_mul_overflow(product, size, &product) && product <= limit,
               "{}: {} ({}) is too large", where, what, fmt::join(sizes, " x "));
  return product;
}

// One layer after validation and shape inference, with the factory that builds it.
struct PlannedLayer {
  LayerInfo info;
  std::function<std::shared_ptr<Module>(Generator& init, uint64_t dropout_seed)> make;
};

PlannedLayer planned(const Context& ctx, Shape output, std::string detail) {
  // Spatial extents stay small enough for the int-sized window arithmetic of the next layer.
  if (output.size() > 1)
    for (int64_t extent : output)
      CU3D_CHECK(extent <= kMaxExtent, "{}: output {} has an extent over {}", ctx.where,
                 shape_str(output), kMaxExtent);
  PlannedLayer p;
  p.info.type = ctx.spec["type"].get<std::string>();
  p.info.detail = std::move(detail);
  p.info.activation_bytes =
      checked_product(output, ctx.where, "the output") * int64_t(sizeof(float));
  p.info.output = std::move(output);
  return p;
}

// Resolves "init" (per layer, else the model's).
InitStyle layer_init(const Context& ctx) {
  if (!ctx.spec.contains("init")) return ctx.init;
  const json& value = ctx.spec["init"];
  CU3D_CHECK(value == "keras" || value == "pytorch",
             "{}: 'init' must be \"keras\" or \"pytorch\", got {}", ctx.where, value.dump());
  return value == "keras" ? InitStyle::keras : InitStyle::pytorch;
}

// A 2D layer's extents as the depth-`depth` 3D ones, so one shape computation serves both.
Dims3 to_dims3(const std::vector<int>& v, int depth) {
  return v.size() == 3 ? Dims3{v[0], v[1], v[2]} : Dims3{depth, v[0], v[1]};
}

Dims3 input_dims3(const Shape& in, int rank) {
  return rank == 3 ? Dims3{int(in[0]), int(in[1]), int(in[2])} : Dims3{1, int(in[0]), int(in[1])};
}

Shape output_shape(Dims3 out, int64_t channels, int rank) {
  return rank == 3 ? Shape{out.d, out.h, out.w, channels} : Shape{out.h, out.w, channels};
}

// conv3d over (D,H,W,C) and conv2d over (H,W,C), which is conv3d with depth 1.
PlannedLayer plan_conv(const Context& ctx, int rank) {
  check_keys(ctx, {"filters", "kernel", "stride", "padding", "init"});
  check_rank(ctx, rank + 1, rank == 3 ? "(D,H,W,C)" : "(H,W,C)");
  CU3D_CHECK(ctx.spec.contains("filters") && ctx.spec.contains("kernel"),
             "{}: needs 'filters' and 'kernel'", ctx.where);
  const int filters = int(read_int(ctx.spec["filters"], ctx.where + ": 'filters'", 1, kMaxExtent));
  const std::vector<int> kernel = read_dims(ctx, "kernel", rank, 1);
  const std::vector<int> stride = read_dims_or(ctx, "stride", rank, std::vector<int>(rank, 1), 1);
  const auto [padding, pad] = read_padding(ctx, rank);
  const InitStyle init = layer_init(ctx);
  const int c = int(ctx.in.back());
  const Dims3 in = input_dims3(ctx.in, rank);
  Conv3dShape s;
  try {
    s = Conv3dShape::make(1, in, c, filters, to_dims3(kernel, 1), to_dims3(stride, 1), padding,
                          to_dims3(pad, 0));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} on input {}", ctx.where, e.what(), shape_str(ctx.in)));
  }
  Shape out = output_shape(s.out, filters, rank);
  PlannedLayer p = planned(
      ctx, std::move(out),
      fmt::format("{} filters, {}, stride {}, {}", filters,
                  dims_str(Shape(kernel.begin(), kernel.end())),
                  dims_str(Shape(stride.begin(), stride.end())), padding_detail(padding, pad)));
  const int64_t taps =
      checked_product({s.kernel.d, s.kernel.h, s.kernel.w, c}, ctx.where, "a filter");
  p.info.parameters = checked_product({filters, taps + 1}, ctx.where, "the weights");
  p.info.macs =
      checked_product({shape_numel(p.info.output), taps}, ctx.where, "the MACs", kMaxMacs);
  if (rank == 3) {
    const Conv3dParams params{to_dims3(stride, 1), padding, to_dims3(pad, 0)};
    p.make = [=](Generator& gen, uint64_t) {
      return std::make_shared<Conv3d>(c, filters, to_dims3(kernel, 1), params, init, gen);
    };
  } else {
    const Conv2dParams params{{stride[0], stride[1]}, padding, {pad[0], pad[1]}};
    p.make = [=](Generator& gen, uint64_t) {
      return std::make_shared<Conv2d>(c, filters, Dims2{kernel[0], kernel[1]}, params, init, gen);
    };
  }
  return p;
}

// max_pool3d / max_pool2d. The stride defaults to the window, as in Keras and PyTorch.
PlannedLayer plan_pool(const Context& ctx, int rank) {
  check_keys(ctx, {"window", "stride", "padding", "ceil_mode"});
  check_rank(ctx, rank + 1, rank == 3 ? "(D,H,W,C)" : "(H,W,C)");
  CU3D_CHECK(ctx.spec.contains("window"), "{}: needs 'window'", ctx.where);
  const std::vector<int> window = read_dims(ctx, "window", rank, 1);
  const std::vector<int> stride = read_dims_or(ctx, "stride", rank, window, 1);
  const auto [padding, pad] = read_padding(ctx, rank);
  const json ceil = ctx.spec.value("ceil_mode", json(false));
  CU3D_CHECK(ceil.is_boolean(), "{}: 'ceil_mode' must be true or false", ctx.where);
  const Dims3 in = input_dims3(ctx.in, rank);
  const int c = int(ctx.in.back());
  Pool3dShape s;
  try {
    s = Pool3dShape::make(1, in, c, to_dims3(window, 1), to_dims3(stride, 1), padding,
                          to_dims3(pad, 0), ceil.get<bool>());
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} on input {}", ctx.where, e.what(), shape_str(ctx.in)));
  }
  Shape out = output_shape(s.out, c, rank);
  PlannedLayer p = planned(
      ctx, std::move(out),
      fmt::format("window {}, stride {}, {}", dims_str(Shape(window.begin(), window.end())),
                  dims_str(Shape(stride.begin(), stride.end())), padding_detail(padding, pad)));
  if (rank == 3) {
    const Pool3dParams params{to_dims3(window, 1), to_dims3(stride, 1), padding, to_dims3(pad, 0),
                              ceil.get<bool>()};
    p.make = [params](Generator&, uint64_t) { return std::make_shared<MaxPool3d>(params); };
  } else {
    const Pool2dParams params{{window[0], window[1]},
                              {stride[0], stride[1]},
                              padding,
                              {pad[0], pad[1]},
                              ceil.get<bool>()};
    p.make = [params](Generator&, uint64_t) { return std::make_shared<MaxPool2d>(params); };
  }
  return p;
}

PlannedLayer plan_dense(const Context& ctx) {
  check_keys(ctx, {"units", "init"});
  CU3D_CHECK(ctx.in.size() == 1,
             "{}: needs a flat (features) input per sample, got {}; put a "
             "{{\"type\": \"flatten\"}} layer before it",
             ctx.where, shape_str(ctx.in));
  CU3D_CHECK(ctx.spec.contains("units"), "{}: needs 'units' (a number or \"classes\")", ctx.where);
  const json& units_value = ctx.spec["units"];
  const int units =
      units_value == "classes"
          ? ctx.num_classes
          : int(read_int(units_value, ctx.where + ": 'units' (or \"classes\")", 1, kMaxExtent));
  CU3D_CHECK(ctx.in[0] <= std::numeric_limits<int>::max(),
             "{}: {} input features are more than a dense layer takes; pool further first",
             ctx.where, ctx.in[0]);
  const int in = int(ctx.in[0]);
  const InitStyle init = layer_init(ctx);
  PlannedLayer p = planned(ctx, {units}, fmt::format("{} -> {}", in, units));
  p.info.parameters = checked_product({units, int64_t(in) + 1}, ctx.where, "the weights");
  p.info.macs = int64_t(in) * units;
  p.make = [=](Generator& gen, uint64_t) { return std::make_shared<Dense>(in, units, init, gen); };
  return p;
}

PlannedLayer plan_activation(const Context& ctx, ActivationKind kind) {
  if (kind == ActivationKind::leaky_relu)
    check_keys(ctx, {"alpha"});
  else
    check_keys(ctx, {});
  const double alpha = read_number(ctx, "alpha", 0.3, 0, 1e6);
  PlannedLayer p = planned(ctx, ctx.in, kind == ActivationKind::softmax ? "over channels" : "");
  if (kind == ActivationKind::leaky_relu) p.info.detail = fmt::format("alpha {}", alpha);
  p.make = [=](Generator&, uint64_t) { return std::make_shared<Activation>(kind, alpha); };
  return p;
}

PlannedLayer plan_layer_norm(const Context& ctx) {
  check_keys(ctx, {"variant", "eps"});
  const json variant = ctx.spec.value("variant", json("per_sample"));
  CU3D_CHECK(variant == "per_sample" || variant == "per_position",
             "{}: 'variant' must be \"per_sample\" (over D,H,W,C) or \"per_position\" (over C), "
             "got {}",
             ctx.where, variant.dump());
  const double eps = read_number(ctx, "eps", 1e-5, 0, 1);
  const int c = int(ctx.in.back());
  const LayerNormVariant v =
      variant == "per_sample" ? LayerNormVariant::per_sample : LayerNormVariant::per_position;
  PlannedLayer p = planned(ctx, ctx.in, fmt::format("{}, eps {}", variant.get<std::string>(), eps));
  p.info.parameters = 2 * int64_t(c);
  // A mean and an rstd per normalized group: one per sample, or one per position (D*H*W).
  const int64_t groups = v == LayerNormVariant::per_sample ? 1 : shape_numel(ctx.in) / c;
  p.info.statistics_bytes = 2 * groups * int64_t(sizeof(float));
  p.make = [=](Generator&, uint64_t) { return std::make_shared<LayerNorm>(c, v, eps); };
  return p;
}

PlannedLayer plan_batch_norm(const Context& ctx) {
  check_keys(ctx, {"momentum", "eps"});
  const double momentum = read_number(ctx, "momentum", 0.1, 0, 1);
  const double eps = read_number(ctx, "eps", 1e-5, 0, 1);
  const int c = int(ctx.in.back());
  PlannedLayer p = planned(ctx, ctx.in, fmt::format("momentum {}, eps {}", momentum, eps));
  p.info.parameters = 2 * int64_t(c);
  p.info.buffers = 2 * int64_t(c);
  p.make = [=](Generator&, uint64_t) { return std::make_shared<BatchNorm>(c, momentum, eps); };
  return p;
}

PlannedLayer plan_dropout(const Context& ctx) {
  check_keys(ctx, {"rate"});
  CU3D_CHECK(ctx.spec.contains("rate"), "{}: needs 'rate'", ctx.where);
  const double rate = read_number(ctx, "rate", 0, 0, 0.999);
  PlannedLayer p = planned(ctx, ctx.in, fmt::format("rate {}", rate));
  p.make = [rate](Generator&, uint64_t seed) { return std::make_shared<Dropout>(rate, seed); };
  return p;
}

PlannedLayer plan_flatten(const Context& ctx) {
  check_keys(ctx, {});
  PlannedLayer p = planned(ctx, {shape_numel(ctx.in)}, "");
  p.info.activation_bytes = 0;  // a view of its input
  p.make = [](Generator&, uint64_t) { return std::make_shared<Flatten>(); };
  return p;
}

// The layer types a config may name. A new layer type is one entry here.
using PlanFn = std::function<PlannedLayer(const Context&)>;
const std::map<std::string, PlanFn>& layer_types() {
  static const std::map<std::string, PlanFn> types = {
      {"conv3d", [](const Context& c) { return plan_conv(c, 3); }},
      {"conv2d", [](const Context& c) { return plan_conv(c, 2); }},
      {"max_pool3d", [](const Context& c) { return plan_pool(c, 3); }},
      {"max_pool2d", [](const Context& c) { return plan_pool(c, 2); }},
      {"dense", plan_dense},
      {"relu", [](const Context& c) { return plan_activation(c, ActivationKind::relu); }},
      {"leaky_relu",
       [](const Context& c) { return plan_activation(c, ActivationKind::leaky_relu); }},
      {"sigmoid", [](const Context& c) { return plan_activation(c, ActivationKind::sigmoid); }},
      {"softmax", [](const Context& c) { return plan_activation(c, ActivationKind::softmax); }},
      {"layer_norm", plan_layer_norm},
      {"batch_norm", plan_batch_norm},
      {"dropout", plan_dropout},
      {"flatten", plan_flatten},
  };
  return types;
}

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : layer_types())
    names.push_back(name);
  return names;
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
  });
}

std::string model_name(const ModelConfig& config) {
  // Called before the config is known to be an object; json::value would throw on anything else.
  const json name = config.is_object() ? config.value("name", json("unnamed")) : json("unnamed");
  return name.is_string() && valid_name(name.get<std::string>()) ? name.get<std::string>()
                                                                 : "unnamed";
}

void check_top_level(const ModelConfig& config, const std::string& where) {
  CU3D_CHECK(config.is_object(), "{}: a model config must be a JSON object", where);
  for (const auto& item : config.items()) {
    const std::string& key = item.key();
    CU3D_CHECK(key == "name" || key == "description" || key == "input" || key == "init" ||
                   key == "ensemble" || key == "layers",
               "{}: unknown key '{}' (a config has name, description, input, init, ensemble, "
               "layers)",
               where, key);
  }
  CU3D_CHECK(config.contains("layers") && config["layers"].is_array() && !config["layers"].empty(),
             "{}: 'layers' must be a non-empty list of layers", where);
}

InitStyle model_init(const ModelConfig& config, const std::string& where) {
  const json value = config.value("init", json("pytorch"));
  CU3D_CHECK(value == "keras" || value == "pytorch",
             "{}: 'init' must be \"keras\" or \"pytorch\", got {}", where, value.dump());
  return value == "keras" ? InitStyle::keras : InitStyle::pytorch;
}

int ensemble_size(const ModelConfig& config, const std::string& where) {
  if (!config.contains("ensemble")) return 1;
  return int(read_int(config["ensemble"], where + ": 'ensemble'", 1, 64));
}

// Validates the whole config and infers every layer's shape.
std::vector<PlannedLayer> plan_model(const ModelConfig& config, int num_classes,
                                     const Shape& input) {
  const std::string where = fmt::format("model '{}'", model_name(config));
  check_top_level(config, where);
  CU3D_CHECK(num_classes >= 1 && num_classes <= kMaxExtent,
             "{}: the number of classes must be in [1, {}], got {}", where, kMaxExtent,
             num_classes);
  const InitStyle init = model_init(config, where);
  Shape shape = input.empty() ? config_input_shape(config) : input;
  for (int64_t extent : shape)
    CU3D_CHECK(extent >= 1 && extent <= kMaxExtent, "{}: input {} has an invalid extent", where,
               shape_str(shape));
  checked_product(shape, where, "the input");
  std::vector<PlannedLayer> plan;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < config["layers"].size(); ++i) {
    const json& spec = config["layers"][i];
    const std::string at = fmt::format("{}, layer {}", where, i);
    CU3D_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(),
               "{}: each layer must be an object with a \"type\"", at);
    const std::string type = spec["type"].get<std::string>();
    const auto found = layer_types().find(type);
    CU3D_CHECK(found != layer_types().end(), "{}: unknown layer type '{}' (known: {})", at, type,
               fmt::join(layer_type_names(), ", "));
    std::string name = fmt::format("{}_{}", type, i);
    if (spec.contains("name")) {
      CU3D_CHECK(spec["name"].is_string() && valid_name(spec["name"].get<std::string>()),
                 "{}: name {} must be 1-64 letters, digits, '_' or '-' (dots join names in "
                 "checkpoints)",
                 at, spec["name"].dump());
      name = spec["name"].get<std::string>();
    }
    CU3D_CHECK(std::find(names.begin(), names.end(), name) == names.end(),
               "{}: the name '{}' is used twice", at, name);
    names.push_back(name);
    const Context ctx{fmt::format("{} '{}'", at, name), spec, shape, num_classes, init};
    PlannedLayer layer = found->second(ctx);
    layer.info.name = name;
    shape = layer.info.output;
    plan.push_back(std::move(layer));
  }
  CU3D_CHECK(shape == Shape{num_classes},
             "{}: the last layer gives {} per sample, not [{}] class scores; end with a dense "
             "layer of \"units\": \"classes\"",
             where, shape_str(shape), num_classes);
  return plan;
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  return Generator(seed ^ stream).next_u64();
}

std::shared_ptr<Sequential> build_sequential(const std::vector<PlannedLayer>& plan, uint64_t seed) {
  Generator init(seed);
  Generator dropout_seeds(derive_seed(seed, kDropoutStream));
  auto model = std::make_shared<Sequential>();
  for (const PlannedLayer& layer : plan) {
    const uint64_t dropout_seed = layer.info.type == "dropout" ? dropout_seeds.next_u64() : 0;
    model->add(layer.info.name, layer.make(init, dropout_seed));
  }
  return model;
}

BlockPart block_part(const std::string& type) {
  if (type == "conv3d") return BlockPart::conv3d;
  if (type == "layer_norm") return BlockPart::layer_norm;
  if (type == "relu") return BlockPart::relu;
  if (type == "max_pool3d") return BlockPart::max_pool3d;
  return BlockPart::other;
}

// Marks the outputs that fused blocks do not keep: in each block the layer right before the ReLU.
void mark_fused_blocks(std::vector<LayerInfo>& layers) {
  const auto part = [&](std::size_t i) {
    return i < layers.size() ? block_part(layers[i].type) : BlockPart::other;
  };
  for (std::size_t first = 0; first < layers.size();) {
    const std::size_t count = fused_block_length(part, first);
    if (count == 0) {
      ++first;
      continue;
    }
    const bool norm = part(first + 1) == BlockPart::layer_norm;
    layers[first + (norm ? 1 : 0)].dropped_when_fused = true;
    first += count;
  }
}

std::string mib(int64_t bytes) {
  return fmt::format("{:.1f} MiB", double(bytes) / (1 << 20));
}

}  // namespace

Shape config_input_shape(const ModelConfig& config) {
  const std::string where = fmt::format("model '{}'", model_name(config));
  CU3D_CHECK(config.is_object() && config.contains("input") && config["input"].is_array() &&
                 !config["input"].empty() && config["input"].size() <= 4,
             "{}: 'input' must list the per-sample input shape, e.g. [16, 112, 112, 3] for "
             "(D, H, W, C)",
             where);
  Shape shape;
  for (const json& extent : config["input"])
    shape.push_back(read_int(extent, where + ": 'input'", 1, kMaxExtent));
  return shape;
}

ModelConfig load_model_config(const std::string& name_or_path) {
  const bool is_path = name_or_path.find('/') != std::string::npos ||
                       (name_or_path.size() > 5 && name_or_path.ends_with(".json"));
  if (!is_path) return preset_config(name_or_path);
  // A folder opens as an ifstream on Linux and only fails on the first read, with a message
  // that names no file.
  std::error_code error;
  CU3D_CHECK(!std::filesystem::is_directory(name_or_path, error),
             "model config {}: is a folder; give a preset name or a JSON file", name_or_path);
  std::ifstream file(name_or_path);
  CU3D_CHECK(file.good(), "model config {}: cannot open the file", name_or_path);
  ModelConfig config;
  try {
    config = json::parse(file);
  } catch (const json::exception& e) {
    throw Error(fmt::format("model config {}: not valid JSON ({})", name_or_path, e.what()));
  }
  CU3D_CHECK(config.is_object(), "model config {}: must be a JSON object", name_or_path);
  return config;
}

int64_t ModelSummary::kept_bytes_per_clip(bool fused) const {
  int64_t kept = 0;
  for (const LayerInfo& layer : layers) {
    kept += layer.statistics_bytes;
    if (!(fused && layer.dropped_when_fused)) kept += layer.activation_bytes;
  }
  return shape_numel(input) * int64_t(sizeof(float)) + members * kept;
}

int64_t ModelSummary::training_bytes(int64_t batch, bool fused) const {
  int64_t largest = 0;
  for (const LayerInfo& layer : layers)
    largest = std::max(largest, layer.activation_bytes);
  const int64_t per_clip = kept_bytes_per_clip(fused) + 2 * largest;
  return 16 * parameters + int64_t(sizeof(float)) * buffers + batch * per_clip;
}

ModelSummary summarize_model(const ModelConfig& config, int num_classes, const Shape& input) {
  const std::vector<PlannedLayer> plan = plan_model(config, num_classes, input);
  ModelSummary s;
  s.name = model_name(config);
  s.input = input.empty() ? config_input_shape(config) : input;
  s.num_classes = num_classes;
  s.members = ensemble_size(config, fmt::format("model '{}'", s.name));
  for (const PlannedLayer& layer : plan) {
    s.layers.push_back(layer.info);
    s.parameters += layer.info.parameters * s.members;
    s.buffers += layer.info.buffers * s.members;
    s.macs += layer.info.macs * s.members;
    s.activation_bytes += layer.info.activation_bytes * s.members;
  }
  mark_fused_blocks(s.layers);
  return s;
}

std::string format_summary(const ModelSummary& s, const std::vector<int64_t>& batches, bool fused) {
  std::string out =
      fmt::format("model {}: input {}, {} classes{}\n", s.name, dims_str(s.input), s.num_classes,
                  s.members > 1 ? fmt::format(", ensemble of {}", s.members) : "");
  out += fmt::format("{:<16} {:<11} {:<16} {:>12} {:>16} {:>12}  {}\n", "layer", "type", "output",
                     "parameters", "MACs", "activation", "detail");
  for (const LayerInfo& l : s.layers)
    out += fmt::format("{:<16} {:<11} {:<16} {:>12} {:>16} {:>12}  {}\n", l.name, l.type,
                       dims_str(l.output), l.parameters, l.macs, mib(l.activation_bytes), l.detail);
  out += fmt::format(
      "total: {} parameters ({:.2f} M){}, {:.3f} GMAC per clip forward, {} of "
      "activations per clip\n",
      s.parameters, double(s.parameters) / 1e6,
      s.buffers ? fmt::format(" + {} buffer values", s.buffers) : "", double(s.macs) / 1e9,
      mib(s.activation_bytes));
  out += fmt::format(
      "estimated training memory with Adam (weights, gradients, moments, kept activations), {}:\n",
      fused ? "fusion on (conv blocks keep no pre-ReLU output)"
            : "fusion off (--no-fuse: every layer output kept)");
  for (int64_t batch : batches)
    out += fmt::format("  batch {:>4}: {}\n", batch, mib(s.training_bytes(batch, fused)));
  return out;
}

std::string model_dot(const ModelSummary& s) {
  // Names are validated to [A-Za-z0-9_-], so labels need no escaping.
  std::string out = fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n", s.name);
  out += "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n";
  out += fmt::format("  input [label=\"input\\n{}\"];\n", dims_str(s.input));
  std::string previous = "input";
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const LayerInfo& l = s.layers[i];
    const std::string id = fmt::format("layer{}", i);
    out += fmt::format("  {} [label=\"{} ({})\\n{}{}\"];\n", id, l.name, l.type,
                       l.detail.empty() ? "" : l.detail + "\\n", dims_str(l.output));
    out += fmt::format("  {} -> {};\n", previous, id);
    previous = id;
  }
  if (s.members > 1) {
    out += fmt::format(
        "  average [label=\"mean of {} members' softmax\\n{}\", shape=ellipse];\n  {} -> "
        "average;\n",
        s.members, s.num_classes, previous);
  }
  return out + "}\n";
}

std::shared_ptr<Module> build_model(const ModelConfig& config, int num_classes, const Shape& input,
                                    uint64_t seed) {
  const std::vector<PlannedLayer> plan = plan_model(config, num_classes, input);
  const int members = ensemble_size(config, fmt::format("model '{}'", model_name(config)));
  if (members == 1) return build_sequential(plan, seed);
  Generator member_seeds(derive_seed(seed, kMemberStream));
  std::vector<std::shared_ptr<Module>> models;
  for (int i = 0; i < members; ++i)
    models.push_back(build_sequential(plan, member_seeds.next_u64()));
  return std::make_shared<Ensemble>(std::move(models));
}

Ensemble::Ensemble(std::vector<std::shared_ptr<Module>> members) {
  CU3D_CHECK(!members.empty(), "Ensemble: needs at least one member");
  for (std::size_t i = 0; i < members.size(); ++i)
    register_module(fmt::format("member{}", i), std::move(members[i]));
}

Tensor Ensemble::forward(const Tensor& x) {
  Tensor total;
  for (const auto& [name, member] : children()) {
    const Tensor p = softmax(member->forward(x));
    total = total.defined() ? add(total, p) : p;
  }
  return scale(total, 1.0 / double(size()));
}

Tensor Ensemble::loss(const Tensor& x, const Tensor& labels) {
  Tensor total;
  for (const auto& [name, member] : children()) {
    const Tensor l = softmax_cross_entropy(member->forward(x), labels);
    total = total.defined() ? add(total, l) : l;
  }
  return scale(total, 1.0 / double(size()));
}

std::string Ensemble::describe() const {
  return fmt::format("Ensemble({} members, mean of softmax outputs)", size());
}

}  // namespace cu3d
