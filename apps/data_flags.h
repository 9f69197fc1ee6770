// Flags shared by the commands that read a dataset (prep, train, eval): which videos and split,
// and which clip recipe. The Keras tool's spellings (--depth, --skip, --color, --nclass) are real
// flags here: --skip and --color are booleans (`--color`, `--no-skip`, `--skip=false`), not the
// tool's strings that were always true.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "data/dataset.h"
#include "data/recipe.h"

namespace cu3d::apps {

struct DatasetFlags {
  int split = 1;
  int nclass = 0;
  std::string layout = "auto";
  double test_fraction = 0.3;
  bool clip_level_split = false;
  uint64_t split_seed = 0;
  CLI::Option* split_option = nullptr;
  CLI::Option* nclass_option = nullptr;
  CLI::Option* layout_option = nullptr;
  CLI::Option* test_fraction_option = nullptr;
  CLI::Option* clip_level_split_option = nullptr;
  CLI::Option* split_seed_option = nullptr;
};

struct RecipeFlags {
  std::string recipe;  // empty: the caller's default
  int depth = 0;       // 0: the recipe's own
  bool skip = true;
  bool color = false;
  std::string mean;  // "dataset", "sports1m" or "none"; empty: the recipe's own
  CLI::Option* skip_option = nullptr;
  CLI::Option* color_option = nullptr;
  CLI::Option* mean_option = nullptr;
};

void add_dataset_flags(CLI::App& cmd, DatasetFlags& flags);
void add_recipe_flags(CLI::App& cmd, RecipeFlags& flags);

// Lists the videos of a dataset folder and splits them as the flags say.
data::Dataset open_dataset(const std::filesystem::path& root, const DatasetFlags& flags);

// The named recipe (or `default_name`) with --depth/--skip/--color applied. --skip and --color
// belong to the keras recipe; given with another one they are an error rather than ignored.
data::Recipe make_recipe(const RecipeFlags& flags, const std::string& default_name);

// Applies the clip-side flags (--depth, --skip) to a recipe read from shards; the decode side
// (--color, --recipe) is fixed at prep, so asking for a different one is an error naming both.
data::Recipe adapt_shard_recipe(data::Recipe recipe, const RecipeFlags& flags,
                                const std::filesystem::path& shards);

// The options that decide how a video folder is split (--split, --layout, --test-fraction,
// --clip-level-split, --split-seed): cu3d prep fixes them for its shards.
std::vector<const CLI::Option*> split_options(const DatasetFlags& flags);

// Refuses each of `options` given on the command line: cu3d prep fixed it for `shards`, so it would
// be ignored.
void refuse_prep_fixed(const std::vector<const CLI::Option*>& options,
                       const std::filesystem::path& shards);

// True when `path` is a shard folder (it holds manifest.json) rather than a video folder.
bool is_shard_folder(const std::filesystem::path& path);

}  // namespace cu3d::apps
