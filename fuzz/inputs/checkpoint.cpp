// The checkpoint target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <filesystem>
#include <memory>

#include "layers/checkpoint.h"
#include "layers/models.h"

namespace cu3d::fuzz {

// layers/checkpoint: a checkpoint file from someone else, loaded as `cu3d eval` and `--resume`
// load it: read, validate the metadata, rebuild the model (when small) and restore its weights.
bool parse_checkpoint_input(Bytes bytes) {
  const std::filesystem::path path = scratch_folder() / "checkpoint.safetensors";
  write_file(path, as_text(bytes));
  return accepted([&] {
    const Checkpoint checkpoint = read_checkpoint(path);
    const ModelSpec& spec = checkpoint.model;
    const ModelSummary summary = summarize_model(spec.config, spec.num_classes, spec.input);
    if (summary.parameters + summary.buffers > kMaxBuiltParameters) return;
    const std::shared_ptr<Module> model = build_model(spec.config, spec.num_classes, spec.input);
    restore_checkpoint(checkpoint, *model);
  });
}

}  // namespace cu3d::fuzz
