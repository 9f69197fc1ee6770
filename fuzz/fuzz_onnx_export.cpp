// libFuzzer target for the ONNX exporter (layers/export_onnx; docs/FUZZING.md). One input is a
// model config's JSON text (seed it with fuzz/corpus/model_config). Every config that shape
// inference accepts and that is small enough to build is built and exported; the exporter may
// reject it with a cu3d::Error (a pooling pad ONNX cannot express), and otherwise its graph must
// be well formed: every node reads the input, a weight or an earlier node's output, names are
// unique, each weight holds what its dims say, the last node gives "probabilities", and the file
// encodes.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/parser_inputs.h"
#include "layers/export_onnx.h"
#include "layers/models.h"

namespace {

using cu3d::fuzz::require;

void check_graph(const cu3d::OnnxGraph& graph) {
  std::set<std::string> values = {cu3d::kOnnxInput};
  for (const cu3d::OnnxInitializer& t : graph.initializers) {
    require(cu3d::shape_numel(t.dims) == int64_t(t.values.size()),
            "onnx: an initializer's values disagree with its dims");
    require(values.insert(t.name).second, "onnx: two initializers share a name");
  }
  for (const cu3d::OnnxNode& node : graph.nodes) {
    for (const std::string& input : node.inputs)
      require(values.count(input) == 1, "onnx: a node reads a value not yet defined");
    for (const std::string& output : node.outputs)
      require(values.insert(output).second, "onnx: a value is defined twice");
  }
  require(!graph.nodes.empty() &&
              graph.nodes.back().outputs == std::vector<std::string>{cu3d::kOnnxOutput},
          "onnx: the last node does not give the probabilities");
  require(!cu3d::encode_onnx_model(graph).empty(), "onnx: empty encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cu3d;
  const nlohmann::json config = nlohmann::json::parse(fuzz::as_text({data, size}), nullptr, false);
  if (config.is_discarded()) return 0;
  fuzz::accepted([&] {
    const ModelSpec spec{config, fuzz::kFuzzClasses, {}};
    const ModelSummary summary = summarize_model(spec.config, spec.num_classes);
    if (summary.parameters + summary.buffers > fuzz::kMaxBuiltParameters) return;
    const std::shared_ptr<Module> model = build_model(spec.config, spec.num_classes);
    check_graph(build_onnx_graph(spec, *model));
  });
  return 0;
}
