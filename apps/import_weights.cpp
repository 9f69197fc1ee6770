#include "apps/import_weights.h"

#include <fmt/core.h>

#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "layers/import_keras.h"
#include "layers/import_pytorch.h"

namespace cu3d::apps {
namespace {

// The PyTorch C3D's head is fc8; a file trained on another class count brings no usable one.
bool other_class_count(const NamedTensors& file, int num_classes) {
  for (const auto& [name, tensor] : file)
    if (name == "fc8.weight") return tensor.dim() != 2 || tensor.size(0) != num_classes;
  return false;
}

NamedTensors parameters_and_buffers(const Module& model) {
  NamedTensors state = model.named_parameters();
  const NamedTensors buffers = model.named_buffers();
  state.insert(state.end(), buffers.begin(), buffers.end());
  return state;
}

void copy_into(Module& model, const NamedTensors& values) {
  NamedTensors state = parameters_and_buffers(model);
  autograd::NoGradGuard no_grad;
  for (const auto& [name, value] : values)
    for (auto& [target_name, target] : state)
      if (target_name == name) target.copy_from(value);
}

void report(const std::filesystem::path& path, const char* kind, const Module& model,
            size_t imported) {
  const size_t total = parameters_and_buffers(model).size();
  fmt::print("init: {} of {} tensors from {} {}{}\n", imported, total, kind, path.string(),
             imported < total ? " (new head)" : "");
}

}  // namespace

bool init_from_foreign_weights(const std::filesystem::path& path, const ModelSpec& spec,
                               Module& model, const std::string& keras_order) {
  if (path.extension() == ".h5") {
    const KerasImportOptions options{parse_keras_axis_order(keras_order, "--keras-order"),
                                     /*new_head=*/true};
    const NamedTensors values =
        map_keras_weights(read_keras_h5(path), spec, parameters_and_buffers(model), options);
    copy_into(model, values);
    report(path, "Keras weights", model, values.size());
    return true;
  }
  if (path.extension() != ".safetensors") return false;
  // Read whole: a cu3d checkpoint is then read again by the trainer, once, at the start of a run.
  const SafetensorsContents file = load_safetensors(path);
  if (file.metadata.contains("cu3d.model_config")) return false;
  const NamedTensors values =
      map_pytorch_c3d(file.tensors, spec, model.named_parameters(),
                      other_class_count(file.tensors, spec.num_classes), path.string());
  copy_into(model, values);
  report(path, "PyTorch C3D", model, values.size());
  return true;
}

}  // namespace cu3d::apps
