// `cu3d synth`: the synthetic motion dataset of data/synth.h, written as real videos in the UCF101
// layout with official-style split lists, ready for `cu3d prep` or `cu3d train --data`.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/subcommands.h"
#include "data/synth.h"

namespace cu3d::apps {
namespace {

struct SynthFlags {
  std::string output;
  data::SynthOptions options;
  int size = 0;  // sets height and width together
};

void run_synth(SynthFlags flags) {
  if (flags.size > 0) flags.options.height = flags.options.width = flags.size;
  const data::SynthOptions& o = flags.options;
  data::write_synth_dataset(flags.output, o);
  const int videos = o.classes * o.groups * o.clips_per_group;
  std::printf(
      "synth: %d videos (%d classes x %d groups x %d clips, %d frames of %dx%d) in %s\n"
      "synth: split lists in %s; next: cu3d prep %s <shards>\n",
      videos, o.classes, o.groups, o.clips_per_group, o.frames, o.height, o.width,
      flags.output.c_str(), (std::filesystem::path(flags.output) / "ucfTrainTestlist").c_str(),
      flags.output.c_str());
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto flags = std::make_shared<SynthFlags>();
  CLI::App* cmd = app.add_subcommand(
      "synth",
      "Write a synthetic action dataset: short videos whose class is a motion (a shape moving "
      "left/right/up/down, rotating either way, growing or shrinking), so that one frame cannot "
      "tell the class and a model must use time. The videos follow UCF101's layout "
      "(<out>/<Class>/v_<Class>_gGG_cCC.avi plus ucfTrainTestlist/ with three splits), so every "
      "other command reads them as it reads UCF101.\n"
      "Example: cu3d synth motion-data --classes 8 --groups 10 --clips 3");
  cmd->add_option("output", flags->output, "folder to write (created)")->required();
  data::SynthOptions& o = flags->options;
  cmd->add_option("--classes", o.classes, "motion classes, 1..8")->capture_default_str();
  cmd->add_option("--groups", o.groups,
                  "groups per class (clips of a group share scene and colours; splits keep a "
                  "group on one side), 2..99")
      ->capture_default_str();
  cmd->add_option("--clips", o.clips_per_group, "clips per group, 1..99")->capture_default_str();
  cmd->add_option("--frames", o.frames, "frames per video")->capture_default_str();
  cmd->add_option("--size", flags->size, "frame height and width in pixels (default 64)");
  cmd->add_option("--fps", o.fps, "frames per second written in the files")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed (the same seed writes identical files)")
      ->capture_default_str();
  cmd->callback([flags] { run_synth(*flags); });
}

}  // namespace cu3d::apps
