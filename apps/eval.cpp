// `cu3d eval`: a trained checkpoint on a test split: clip and video accuracy (top-1, top-5),
// per-class accuracy and a confusion matrix PNG. Clips are cut with the checkpoint's own recipe.
#include <cmath>
#include <filesystem>
#include <memory>

#include <fmt/core.h>

#include "apps/compute_flags.h"
#include "apps/data_flags.h"
#include "apps/model_io.h"
#include "apps/plots.h"
#include "apps/subcommands.h"
#include "data/shard.h"
#include "engine/compute.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

struct EvalFlags {
  std::string checkpoint;
  std::string data;
  DatasetFlags dataset;
  int batch = 16;
  int workers = 2;
  std::string confusion;
  bool no_fuse = false;
  std::string device = "cpu";
  std::string precision = "fp32";
};

// The shards must hold frames decoded as the checkpoint's recipe decodes them, with its classes.
void check_shards_match(const data::ShardSet& shards, const TrainedModel& m,
                        const std::string& folder) {
  const data::DecodeOptions want = data::decode_options(m.recipe);
  const data::DecodeOptions have = data::decode_options(shards.recipe());
  CU3D_CHECK(want.height == have.height && want.width == have.width && want.color == have.color,
             "{}: the shards hold {}x{} {} frames but the model was trained on {}x{} {}; prepare "
             "them with the model's recipe ({})",
             folder, have.height, have.width, data::color_order_name(have.color), want.height,
             want.width, data::color_order_name(want.color), m.recipe.name);
  CU3D_CHECK(shards.classes() == m.classes,
             "{}: the shards' classes differ from the model's ({} vs {} classes); use the same "
             "dataset and --nclass as in training",
             folder, shards.classes().size(), m.classes.size());
}

void print_result(const EvalResult& r, const TrainedModel& m) {
  fmt::print("eval: {} clips of {} videos\n", r.clips, r.videos);
  const size_t classes = m.classes.size();
  fmt::print("eval: clip  accuracy top-1 {:.4f}{}\n", r.clip_top1, top5_text(r.clip_top5, classes));
  fmt::print("eval: video accuracy top-1 {:.4f}{}  (clip scores averaged per video)\n",
             r.video_top1, top5_text(r.video_top5, classes));
  fmt::print("eval: per-class video accuracy:\n");
  for (size_t c = 0; c < m.classes.size(); ++c) {
    int64_t videos = 0;
    for (int64_t v : r.confusion[c])
      videos += v;
    if (std::isnan(r.class_accuracy[c]))
      fmt::print("  {:<24} (no test video)\n", m.classes[c]);
    else
      fmt::print("  {:<24} {:.4f}  ({} videos)\n", m.classes[c], r.class_accuracy[c], videos);
  }
}

void run_eval(const EvalFlags& f) {
  compute_options().fuse = !f.no_fuse;
  const Device device = parse_device_flag(f.device, "evaluate");
  compute_options().precision = parse_flag("--precision", f.precision, parse_precision);
  const TrainedModel m = load_trained_model(f.checkpoint);
  m.model->to(device);
  print_compute(device, compute_options().precision, "eval");
  std::shared_ptr<data::ShardSet> shards;
  std::unique_ptr<data::ClipSource> source;
  if (is_shard_folder(f.data)) {
    std::vector<const CLI::Option*> fixed = split_options(f.dataset);
    fixed.push_back(f.dataset.nclass_option);
    refuse_prep_fixed(fixed, f.data);
    shards = std::make_shared<data::ShardSet>(f.data);
    check_shards_match(*shards, m, f.data);
    source = std::make_unique<data::ShardSource>(*shards, data::Side::test);
  } else {
    const data::Dataset dataset = open_dataset(f.data, f.dataset);
    CU3D_CHECK(dataset.classes == m.classes,
               "{}: the dataset's classes differ from the model's ({} vs {}); use the same "
               "--nclass as in training",
               f.data, dataset.classes.size(), m.classes.size());
    source = std::make_unique<data::VideoSource>(dataset.test, m.recipe);
  }
  const EvalResult r =
      evaluate(*m.model, *source, m.recipe, m.spec.input, m.spec.num_classes, f.batch, f.workers);
  print_result(r, m);
  const fs::path png = f.confusion.empty()
                           ? fs::path(f.checkpoint).parent_path() / "eval_confusion_matrix.png"
                           : fs::path(f.confusion);
  write_confusion_png(png, r.confusion, m.classes);
  fmt::print("eval: confusion matrix in {}\n", png.string());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint from cu3d train on the test split of shards or of a video folder: "
      "clip accuracy, video accuracy (clip scores averaged per video), top-1 and top-5, "
      "per-class accuracy and a confusion matrix PNG.\n"
      "Example: cu3d eval runs/k3d/checkpoint-best.safetensors --data motion-shards");
  cmd->add_option("checkpoint", f->checkpoint, "a .safetensors checkpoint written by cu3d train")
      ->required();
  cmd->add_option("--data", f->data, "shard folder or video folder")->required();
  add_dataset_flags(*cmd, f->dataset);
  cmd->add_option("--batch", f->batch, "clips per forward pass")->capture_default_str();
  cmd->add_option("--workers", f->workers, "loader threads")->capture_default_str();
  cmd->add_option("--confusion", f->confusion,
                  "confusion matrix PNG (default: eval_confusion_matrix.png beside the "
                  "checkpoint)");
  cmd->add_flag("--no-fuse", f->no_fuse,
                "run conv, ReLU and max-pool as separate ops instead of fused blocks");
  add_device_flag(*cmd, f->device);
  add_precision_flag(*cmd, f->precision);
  cmd->callback([f] { run_eval(*f); });
}

}  // namespace cu3d::apps
