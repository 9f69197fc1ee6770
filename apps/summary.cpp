// `cu3d summary`: a model's layer table (output shapes, parameters, MACs, activation memory),
// totals, the training-memory estimate per batch size (with fused conv blocks, or without:
// --no-fuse), and its diagram (DOT; PNG when Graphviz's `dot` is installed), without allocating
// the model.
#include <memory>

#include <fmt/core.h>

#include "apps/plots.h"
#include "apps/subcommands.h"
#include "engine/atomic_file.h"
#include "layers/models.h"

namespace cu3d::apps {
namespace {

struct SummaryFlags {
  std::string model = "c3d";
  int classes = 101;
  std::vector<int64_t> input;
  std::vector<int64_t> batches = {1, 8, 16, 32, 64};
  std::string diagram;
  int ensemble = 1;
  bool no_fuse = false;
};

void run_summary(const SummaryFlags& f) {
  CU3D_CHECK(f.input.empty() || f.input.size() == 3 || f.input.size() == 4,
             "--input takes D H W C (or H W C for a 2D model), not {} values", f.input.size());
  ModelConfig config = load_model_config(f.model);
  CU3D_CHECK(f.ensemble >= 1 && f.ensemble <= 64, "--ensemble {} must be in 1..64", f.ensemble);
  if (f.ensemble > 1) config["ensemble"] = f.ensemble;
  const ModelSummary summary = summarize_model(config, f.classes, Shape(f.input));
  fmt::print("{}", format_summary(summary, f.batches, !f.no_fuse));
  if (f.diagram.empty()) return;
  const std::filesystem::path dot = f.diagram + ".dot", png = f.diagram + ".png";
  write_atomically(dot, model_dot(summary));
  if (render_dot(dot, png))
    fmt::print("diagram: {} and {}\n", dot.string(), png.string());
  else
    fmt::print("diagram: {} (install graphviz for the PNG: dot -Tpng {} -o {})\n", dot.string(),
               dot.string(), png.string());
}

}  // namespace

void add_summary_command(CLI::App& app) {
  auto f = std::make_shared<SummaryFlags>();
  CLI::App* cmd = app.add_subcommand(
      "summary",
      "Print a model's layers (output shape, parameters, multiply-accumulates, activation "
      "memory), its totals and the memory one training step needs per batch size, and draw its "
      "diagram. Nothing is allocated, so this is the place to check that C3D fits before "
      "training.\n"
      "Example: cu3d summary --model c3d --nclass 101 --diagram c3d");
  cmd->add_option("--model", f->model,
                  "a preset (c3d, c3d-ln, keras3d, keras3d-bn, keras3d-leaky, keras3d-relu, "
                  "cnn2d) or a JSON config file")
      ->capture_default_str();
  cmd->add_option("--nclass,--classes", f->classes, "number of classes")->capture_default_str();
  cmd->add_option("--input", f->input,
                  "per-sample input D H W C (or H W C for 2D models); default the model's own")
      ->expected(1, 4)  // checked in run_summary: 3 or 4 (CLI11's help would say "x 3")
      ->type_name("D H W [C]");
  cmd->add_option("--batch", f->batches, "batch sizes for the training-memory estimate")
      ->check(CLI::Range(1, 1 << 20))
      ->expected(1, 16);
  cmd->add_option("--ensemble", f->ensemble, "members of an ensemble")->capture_default_str();
  cmd->add_flag("--no-fuse", f->no_fuse,
                "estimate the memory of `cu3d train --no-fuse` (separate conv, ReLU and max-pool "
                "ops keep every layer output) instead of fused conv blocks");
  cmd->add_option("--diagram", f->diagram,
                  "write the diagram to PATH.dot (and PATH.png when Graphviz is installed)");
  cmd->callback([f] { run_summary(*f); });
}

}  // namespace cu3d::apps
