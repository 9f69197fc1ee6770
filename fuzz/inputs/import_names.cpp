// The import_names target's entry point (its input's form: fuzz/import_names_input.h).
#include "fuzz/import_names_input.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/import_keras.h"
#include "layers/import_pytorch.h"
#include "layers/models.h"

namespace cu3d::fuzz {
namespace {

// The tensors of one input are allocated (zeros), so their sizes are bounded: 4 MB in all.
constexpr int64_t kMaxImportValues = 1 << 20;
constexpr size_t kMaxImportTensors = 256;
constexpr size_t kMaxImportRank = kMaxDims;
// The golden fixtures' class count, so their weight files map without a new head.
constexpr int kImportClasses = 5;

struct ImportModel {
  ModelSpec spec;
  NamedTensors params;
  NamedTensors state;  // parameters, then buffers
};

// The preset at the golden fixtures' widths, built once; an unknown preset is a cu3d::Error.
const ImportModel& import_model(const std::string& preset) {
  static std::map<std::string, ImportModel> models;
  if (const auto found = models.find(preset); found != models.end()) return found->second;
  nlohmann::json config = preset_config(preset);
  const bool c3d = preset.starts_with("c3d");
  const int filter_div = c3d ? 32 : 4, unit_div = c3d ? 64 : 16;
  for (nlohmann::json& layer : config["layers"]) {
    if (layer.contains("filters")) layer["filters"] = layer["filters"].get<int>() / filter_div;
    if (layer.contains("units") && layer["units"].is_number())
      layer["units"] = layer["units"].get<int>() / unit_div;
  }
  const Shape input = c3d                 ? Shape{16, 32, 16, 3}
                      : preset == "cnn2d" ? Shape{20, 20, 1}
                                          : Shape{10, 16, 20, 3};
  ImportModel model{{config, kImportClasses, input}, {}, {}};
  const std::shared_ptr<Module> built = build_model(config, kImportClasses, input);
  model.params = built->named_parameters();
  model.state = model.params;
  for (auto& entry : built->named_buffers())
    model.state.push_back(std::move(entry));
  return models.emplace(preset, std::move(model)).first->second;
}

// "3,3,3,1,4" within the bounds; nullopt otherwise.
std::optional<Shape> parse_import_shape(std::string_view text, int64_t& values) {
  Shape shape;
  int64_t numel = 1;
  while (!text.empty()) {
    const size_t comma = std::min(text.find(','), text.size());
    int64_t dim = -1;
    const std::string_view digits = text.substr(0, comma);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), dim);
    if (error != std::errc() || end != digits.data() + digits.size() || dim < 0 ||
        dim > kMaxImportValues || shape.size() == kMaxImportRank)
      return std::nullopt;
    numel *= std::max<int64_t>(dim, 1);
    if (numel > kMaxImportValues) return std::nullopt;
    shape.push_back(dim);
    text.remove_prefix(std::min(comma + 1, text.size()));
  }
  values += numel;
  if (values > kMaxImportValues) return std::nullopt;
  return shape;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string word; in >> word;)
    out.push_back(word);
  return out;
}

// What an accepted mapping promises the importer that copies it.
void check_import_assignment(const NamedTensors& assigned, const NamedTensors& state,
                             bool new_head) {
  const std::map<std::string, Tensor> targets(state.begin(), state.end());
  std::set<std::string> seen;
  for (const auto& [name, value] : assigned) {
    const auto target = targets.find(name);
    require(target != targets.end(), "import: assigns a tensor the model does not have");
    require(value.shape() == target->second.shape(), "import: assigns a tensor of another shape");
    require(seen.insert(name).second, "import: assigns one tensor twice");
  }
  require(new_head || seen.size() == targets.size(), "import: leaves a tensor of the model unset");
}

}  // namespace

bool parse_import_names_input(Bytes bytes) {
  std::istringstream in{std::string(as_text(bytes))};
  std::string line;
  if (!std::getline(in, line)) return false;
  const std::vector<std::string> header = words(line);
  if (header.size() < 2 || (header[0] != "keras" && header[0] != "pytorch")) return false;
  const bool keras = header[0] == "keras";
  KerasImportOptions options;
  for (size_t i = 2; i < header.size(); ++i) {
    if (header[i] == "hwdc")
      options.order = KerasAxisOrder::hwdc;
    else if (header[i] == "new_head")
      options.new_head = true;
    else
      return false;
  }
  KerasWeights file{"fuzz.h5", {}};
  NamedTensors tensors;
  int64_t values = 0;
  while (std::getline(in, line)) {
    const std::vector<std::string> w = words(line);
    if (w.empty()) continue;
    if (w.size() != (keras ? 3u : 2u) || tensors.size() == kMaxImportTensors) return false;
    const auto shape = parse_import_shape(w.back(), values);
    if (!shape) return false;
    tensors.emplace_back(w[keras ? 1 : 0], Tensor::zeros(*shape));
    if (!keras) continue;
    if (file.layers.empty() || file.layers.back().name != w[0]) file.layers.push_back({w[0], {}});
    file.layers.back().weights.push_back(tensors.back());
  }
  return accepted([&] {
    const ImportModel& model = import_model(header[1]);
    if (keras) {
      check_import_assignment(map_keras_weights(file, model.spec, model.state, options),
                              model.state, options.new_head);
      return;
    }
    check_import_assignment(
        map_pytorch_c3d(tensors, model.spec, model.params, options.new_head, "fuzz.safetensors"),
        model.params, options.new_head);
  });
}

}  // namespace cu3d::fuzz
