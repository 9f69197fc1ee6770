// `cu3d prep`: decodes a video folder once, with a clip recipe, into shards that training reads at
// memory speed (data/shard.h), then prints what it stored: videos, clips, skipped files, classes
// and the split sizes.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/core.h>

#include "apps/data_flags.h"
#include "apps/subcommands.h"
#include "data/clip_plan.h"
#include "data/shard.h"

namespace cu3d::apps {
namespace {

struct PrepFlags {
  std::string videos;
  std::string output;
  DatasetFlags dataset;
  RecipeFlags recipe;
  data::PrepOptions prep;
  std::string format = "auto";
};

// auto: JPEG for frames of 64x64 and more (c3d's 128x171 RGB: 64 KiB raw, ~9 KiB at q95, so
// UCF101 takes ~22 GB instead of ~160 GB), raw for smaller ones (the keras recipe's 32x32 gray
// frames are 1 KiB: JPEG would save little and cost a decode per frame). docs/DATA.md has the
// measured sizes and speeds.
data::FrameFormat frame_format(const std::string& format, const data::Recipe& recipe) {
  if (format != "auto") return data::parse_frame_format(format, "--format");
  constexpr int kJpegMinSide = 64;
  return std::min(recipe.resize_height, recipe.resize_width) >= kJpegMinSide
             ? data::FrameFormat::jpeg
             : data::FrameFormat::raw;
}

// Evaluation clips of one side: one per video for the keras recipe, every window for c3d.
int64_t eval_clips(const data::ShardSet& shards, data::Side side) {
  int64_t clips = 0;
  for (size_t i : shards.indices(side))
    clips += int64_t(data::plan_eval_clips(shards.recipe(), shards.video(i).frames).size());
  return clips;
}

// The preset made for a recipe's clips: C3D for c3d's 112x112 crops, the TensorFlow C3D (layer
// norm) for tf-c3d's, the Keras tool's 3D CNN for keras clips.
const char* model_for_recipe(const std::string& recipe) {
  if (recipe == "c3d") return "c3d";
  if (recipe == "tf-c3d") return "c3d-ln";
  return "keras3d";
}

void print_prep_summary(const data::ShardSet& shards, const data::PrepReport& report,
                        const std::string& folder) {
  const size_t train = shards.indices(data::Side::train).size();
  const size_t test = shards.indices(data::Side::test).size();
  const data::Recipe& r = shards.recipe();
  fmt::print("prep: {} videos stored ({} skipped as unreadable), {} classes, split: {}\n",
             report.videos, report.skipped, shards.classes().size(), shards.split());
  fmt::print("prep: train {} videos = {} clips per epoch; test {} videos = {} evaluation clips\n",
             train, train, test, eval_clips(shards, data::Side::test));
  fmt::print("prep: recipe {} ({} frames of {}x{} {}), {} frames, {} shards written, {} reused\n",
             r.name, r.depth, r.crop == data::CropKind::none ? r.resize_height : r.crop_height,
             r.crop == data::CropKind::none ? r.resize_width : r.crop_width,
             data::color_order_name(r.color), data::frame_format_name(shards.format()),
             report.shards_written, report.shards_reused);
  fmt::print("prep: shards in {}; next: cu3d train --data {} --model {} --output <run>\n", folder,
             folder, model_for_recipe(r.name));
}

void run_prep(const PrepFlags& flags) {
  const data::Dataset dataset = open_dataset(flags.videos, flags.dataset);
  const data::Recipe recipe = make_recipe(flags.recipe, "keras");
  fmt::print("prep: {} train + {} test videos, {} classes, recipe {}\n", dataset.train.size(),
             dataset.test.size(), dataset.classes.size(), recipe.name);
  std::fflush(stdout);
  data::PrepOptions options = flags.prep;
  options.format = frame_format(flags.format, recipe);
  const data::PrepReport report = data::prepare_shards(dataset, recipe, flags.output, options);
  print_prep_summary(data::ShardSet(flags.output), report, flags.output);
}

}  // namespace

void add_prep_command(CLI::App& app) {
  auto flags = std::make_shared<PrepFlags>();
  CLI::App* cmd = app.add_subcommand(
      "prep",
      "Decode a video folder once into shards (uint8 frames resized by a clip recipe, raw or "
      "JPEG, with an index and a manifest), so that training reads clips without decoding video. "
      "Reads "
      "UCF101's layout (with its split lists), the Keras tool's flat folder, or any "
      "<root>/<class>/*.avi tree; without split lists the videos are split by group. Unreadable "
      "videos are skipped with a warning. An interrupted prep resumes where it stopped.\n"
      "Example: cu3d prep motion-data motion-shards --recipe keras --depth 10");
  cmd->add_option("videos", flags->videos, "dataset folder")->required();
  cmd->add_option("output", flags->output, "shard folder to write (created)")->required();
  add_dataset_flags(*cmd, flags->dataset);
  add_recipe_flags(*cmd, flags->recipe);
  cmd->add_option("--threads", flags->prep.threads, "decoding threads")->capture_default_str();
  cmd->add_option("--videos-per-shard", flags->prep.videos_per_shard, "videos in one shard file")
      ->capture_default_str();
  cmd->add_option("--format", flags->format,
                  "how frames are stored: jpeg (7-14x smaller, decoded by the loader), raw "
                  "(fastest to read), or auto (jpeg for frames of 64x64 and more, raw below)")
      ->check(CLI::IsMember({"auto", "jpeg", "raw"}))
      ->capture_default_str();
  cmd->add_option("--jpeg-quality", flags->prep.jpeg_quality, "JPEG quality of --format jpeg")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->callback([flags] { run_prep(*flags); });
}

}  // namespace cu3d::apps
