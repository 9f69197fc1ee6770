#include "apps/data_flags.h"

#include "kernels/error.h"

namespace cu3d::apps {

void add_dataset_flags(CLI::App& cmd, DatasetFlags& flags) {
  flags.split_option =
      cmd.add_option("--split", flags.split,
                     "official split list 1..3 (UCF101 layout); without lists the videos are "
                     "split by group, seeded")
          ->check(CLI::Range(1, 3))
          ->capture_default_str();
  flags.nclass_option =
      cmd.add_option("--nclass", flags.nclass,
                     "keep the first N classes (classInd.txt or sorted order); 0 keeps all");
  flags.layout_option =
      cmd.add_option("--layout", flags.layout, "dataset layout: auto, ucf101, flat or tree")
          ->capture_default_str();
  flags.test_fraction_option =
      cmd.add_option("--test-fraction", flags.test_fraction,
                     "share of each class held out when the layout has no split lists")
          ->capture_default_str();
  flags.clip_level_split_option =
      cmd.add_flag("--clip-level-split", flags.clip_level_split,
                   "split clips at random instead of by group (leaks near-duplicate clips into the "
                   "test side and inflates accuracy; prints a warning)");
  flags.split_seed_option =
      cmd.add_option("--split-seed", flags.split_seed, "seed of a split made here (not the lists)")
          ->capture_default_str();
}

void add_recipe_flags(CLI::App& cmd, RecipeFlags& flags) {
  cmd.add_option("--recipe", flags.recipe,
                 "clip recipe: keras (32x32 frames, gray unless --color), c3d (16x112x112 RGB "
                 "crops) or tf-c3d; default keras for prep, and for train on a video folder c3d "
                 "when the model takes 112x112 clips");
  cmd.add_option("--depth", flags.depth,
                 "frames per clip (default: the recipe's: keras 10, c3d and tf-c3d 16)");
  flags.skip_option = cmd.add_flag("--skip,!--no-skip", flags.skip,
                                   "keras recipe: frames evenly spaced over the video (default) "
                                   "or, with --no-skip, the first ones");
  flags.color_option =
      cmd.add_flag("--color", flags.color, "keras recipe: RGB frames instead of gray");
  flags.mean_option =
      cmd.add_option(
             "--mean", flags.mean,
             "mean subtracted from every pixel: dataset (the training split's, computed at "
             "prep), sports1m (for imported C3D weights) or none; default the recipe's (c3d "
             "and tf-c3d: dataset, keras: none)")
          ->check(CLI::IsMember({"dataset", "sports1m", "none"}));
}

data::Dataset open_dataset(const std::filesystem::path& root, const DatasetFlags& flags) {
  data::DatasetOptions options;
  options.layout = data::parse_layout(flags.layout);
  options.split = flags.split;
  options.nclass = flags.nclass;
  options.test_fraction = flags.test_fraction;
  options.seed = flags.split_seed;
  options.clip_level_split = flags.clip_level_split;
  return data::load_dataset(root, options);
}

namespace {

data::Recipe named_recipe(const RecipeFlags& flags, const std::string& name) {
  const bool keras_flags = flags.skip_option->count() > 0 || flags.color_option->count() > 0;
  if (name == "keras")
    return data::keras_recipe(flags.depth > 0 ? flags.depth : 10, flags.skip, flags.color);
  CU3D_CHECK(!keras_flags,
             "--skip and --color apply to the keras recipe; recipe '{}' fixes its own sampling "
             "and colour",
             name);
  data::Recipe recipe = data::recipe_by_name(name);
  if (flags.depth > 0) recipe.depth = flags.depth;
  return recipe;
}

}  // namespace

data::Recipe make_recipe(const RecipeFlags& flags, const std::string& default_name) {
  data::Recipe recipe = named_recipe(flags, flags.recipe.empty() ? default_name : flags.recipe);
  if (!flags.mean.empty()) recipe.mean_source = flags.mean == "none" ? "" : flags.mean;
  if (recipe.mean_source == "sports1m") recipe.mean = data::sports1m_mean(recipe.color);
  data::check_recipe(recipe);
  return recipe;
}

data::Recipe adapt_shard_recipe(data::Recipe recipe, const RecipeFlags& flags,
                                const std::filesystem::path& shards) {
  CU3D_CHECK(flags.recipe.empty() || flags.recipe == recipe.name,
             "{}: the shards were prepared with recipe '{}', not '{}'; run cu3d prep again with "
             "--recipe {}",
             shards.string(), recipe.name, flags.recipe, flags.recipe);
  const bool gray = recipe.color == data::ColorOrder::gray;
  CU3D_CHECK(flags.color_option->count() == 0 || flags.color == !gray,
             "{}: the shards hold {} frames; --color{} needs shards prepared with it",
             shards.string(), data::color_order_name(recipe.color), flags.color ? "" : "=false");
  if (flags.depth > 0) recipe.depth = flags.depth;
  if (flags.skip_option->count() > 0) {
    CU3D_CHECK(recipe.sampling != data::Sampling::window,
               "--skip applies to the keras recipe; the shards' recipe '{}' samples windows",
               recipe.name);
    recipe.sampling = flags.skip ? data::Sampling::spaced : data::Sampling::first;
  }
  data::check_recipe(recipe);
  return recipe;
}

std::vector<const CLI::Option*> split_options(const DatasetFlags& flags) {
  return {flags.split_option, flags.layout_option, flags.test_fraction_option,
          flags.clip_level_split_option, flags.split_seed_option};
}

void refuse_prep_fixed(const std::vector<const CLI::Option*>& options,
                       const std::filesystem::path& shards) {
  for (const CLI::Option* option : options)
    CU3D_CHECK(option->count() == 0,
               "{} was fixed by cu3d prep for the shards in {}; re-run prep to change it",
               option->get_name(), shards.string());
}

bool is_shard_folder(const std::filesystem::path& path) {
  return std::filesystem::is_regular_file(path / "manifest.json");
}

}  // namespace cu3d::apps
