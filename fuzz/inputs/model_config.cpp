// The model_config target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "layers/models.h"

namespace cu3d::fuzz {

namespace {

// Shape inference is the validator (summarize_model); whatever it accepts, build_model must build
// with the parameter count it promised, and the model must map one clip to `classes` outputs.
void check_model(const ModelConfig& config, int classes, const Shape& input) {
  const ModelSummary summary = summarize_model(config, classes, input);
  if (summary.parameters + summary.buffers > kMaxBuiltParameters || summary.macs > kMaxBuiltMacs)
    return;
  try {
    const std::shared_ptr<Module> model = build_model(config, classes, input);
    require(model->parameter_count() == summary.parameters,
            "model: build_model and summarize_model disagree on the parameter count");
    Shape batch{1};
    batch.insert(batch.end(), summary.input.begin(), summary.input.end());
    Generator gen(1);
    autograd::NoGradGuard no_grad;
    model->eval();
    const Tensor output = (*model)(Tensor::uniform(batch, 0, 1, gen));
    require(output.shape() == Shape{1, classes}, "model: output is not (1, classes)");
  } catch (const Error& e) {
    throw PropertyViolation(std::string("model: summarize_model accepted a config that ") +
                            "build_model or forward rejects: " + e.what());
  }
}

}  // namespace

// layers/models: model configs written by users (`--model my.json`).
bool parse_model_config_input(Bytes bytes) {
  const nlohmann::json config = nlohmann::json::parse(as_text(bytes), nullptr, false);
  if (config.is_discarded()) return false;
  return accepted([&] { check_model(config, kFuzzClasses, {}); });
}

}  // namespace cu3d::fuzz
