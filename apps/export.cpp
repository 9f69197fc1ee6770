// `cu3d export`: a checkpoint to ONNX (layers/export_onnx.h) for ONNX Runtime, TensorRT or
// Triton. The file carries the class names and the recipe (how pixels become the model's input)
// in its metadata, so a serving client needs nothing else.
#include <filesystem>
#include <memory>

#include <fmt/ranges.h>

#include "apps/model_io.h"
#include "apps/subcommands.h"
#include "engine/atomic_file.h"
#include "layers/export_onnx.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

struct ExportFlags {
  std::string checkpoint;
  std::string output;
};

fs::path default_output(const fs::path& checkpoint) {
  fs::path out = checkpoint;
  return out.replace_extension(".onnx");
}

void run_export(const ExportFlags& f) {
  const Checkpoint checkpoint = read_user_checkpoint(f.checkpoint);
  const std::shared_ptr<Module> model =
      build_model(checkpoint.model.config, checkpoint.model.num_classes, checkpoint.model.input);
  restore_checkpoint(checkpoint, *model);
  OnnxGraph graph = build_onnx_graph(checkpoint.model, *model);
  for (const char* key : {kClassesKey, kRecipeKey}) {
    const auto found = checkpoint.metadata.find(key);
    if (found != checkpoint.metadata.end()) graph.metadata.emplace_back(key, found->second);
  }
  const fs::path out = f.output.empty() ? default_output(f.checkpoint) : fs::path(f.output);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  const std::string bytes = encode_onnx_model(graph);
  write_atomically(out, bytes);
  fmt::print("export: {} ({} nodes, {} weight tensors, {:.1f} MiB), ONNX opset {}\n", out.string(),
             graph.nodes.size(), graph.initializers.size(), double(bytes.size()) / (1 << 20),
             kOnnxOpset);
  fmt::print(
      "export: input '{}' float [N,{}] (N dynamic; channels last, pixels normalized as the "
      "recipe in the metadata says), output '{}' float [N,{}] probabilities\n",
      kOnnxInput, fmt::join(graph.input, ","), kOnnxOutput, graph.classes);
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto f = std::make_shared<ExportFlags>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Export a checkpoint to ONNX (opset 17) for ONNX Runtime, TensorRT or Triton. Input "
      "'input' [N, D, H, W, C] float (the model's own shape; a 2D model [N, H, W, C]), output "
      "'probabilities' [N, classes]; class names and recipe in the metadata.\n"
      "Example: cu3d export runs/k3d/checkpoint-best.safetensors --output k3d.onnx");
  cmd->add_option("checkpoint", f->checkpoint, "a .safetensors checkpoint")->required();
  cmd->add_option("-o,--output", f->output,
                  "the .onnx file (default: the checkpoint's path with .onnx)");
  cmd->callback([f] { run_export(*f); });
}

}  // namespace cu3d::apps
