// Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) with the project's own writers, so
// the fuzzers start from files cu3d really produces and mutate from there. Run by scripts/fuzz.sh
// --seeds; the output is committed (small) and the CPU suite checks that every seed is still
// accepted, so a format change that leaves the seeds behind shows up as a failing test.
//   make_seeds <corpus folder>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/app.h"
#include "data/dataset.h"
#include "data/recipe.h"
#include "data/shard.h"
#include "data/synth.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "fuzz/import_names_input.h"
#include "fuzz/parser_inputs.h"
#include "layers/checkpoint.h"
#include "layers/import_keras.h"
#include "layers/models.h"

namespace fs = std::filesystem;
using namespace cu3d;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_seed(const fs::path& folder, const std::string& name, std::string_view bytes) {
  fs::create_directories(folder);
  fuzz::write_file(folder / name, bytes);
}

// Every dtype, a scalar, an empty tensor and metadata: the header fields the parser must handle.
void safetensors_seeds(const fs::path& folder) {
  fs::create_directories(folder);
  Generator gen(1);
  save_safetensors(folder / "weights.safetensors",
                   {{"conv1.weight", Tensor::normal({2, 1, 1, 1, 3}, 0, 1, gen)},
                    {"conv1.bias", Tensor::normal({2}, 0, 1, gen)}},
                   {{"cu3d.model_config", R"({"name":"tiny"})"}, {"epoch", "3"}});
  NamedTensors every_dtype;
  for (DType dtype :
       {DType::f32, DType::f64, DType::bf16, DType::f16, DType::u8, DType::i32, DType::i64})
    every_dtype.emplace_back(std::string(dtype_name(dtype)), Tensor::full({2}, 1, dtype));
  save_safetensors(folder / "every_dtype.safetensors", every_dtype);
  save_safetensors(
      folder / "scalar_and_empty.safetensors",
      {{"optimizer.step", Tensor::full({}, 7, DType::i64)}, {"empty", Tensor::empty({0, 3})}});
}

// A tiny synthetic UCF101-style dataset: its lists, file names and shards.
void dataset_seeds(const fs::path& corpus) {
  const fs::path videos = fs::temp_directory_path() / "cu3d-fuzz-seeds";
  const fs::path shards = videos / "shards";
  fs::remove_all(videos);
  data::SynthOptions options;
  options.classes = 2;
  options.groups = 2;
  options.clips_per_group = 2;
  options.frames = 4;
  options.height = options.width = 16;
  data::write_synth_dataset(videos, options);

  const fs::path lists = videos / "ucfTrainTestlist";
  for (const char* list : {"classInd.txt", "trainlist01.txt", "testlist01.txt"})
    write_seed(corpus / "split_list", list, read_file(lists / list));

  const data::Dataset dataset = data::load_dataset(videos, {});
  for (const data::VideoEntry& video : dataset.train)
    write_seed(corpus / "ucf_name", video.path.filename().string(), video.path.filename().string());

  // 8x8 gray frames keep the shard seed near 1 KB, so mutations reach every field quickly.
  data::Recipe recipe = data::keras_recipe(2, true, false);
  recipe.resize_height = recipe.resize_width = recipe.crop_height = recipe.crop_width = 8;
  recipe.mean_source = "dataset";
  data::prepare_shards(dataset, recipe, shards, {.threads = 1, .progress = false});
  const std::string manifest = read_file(shards / "manifest.json");
  write_seed(corpus / "shard", "one_shard",
             manifest + std::string(fuzz::kShardIndexSeparator) +
                 read_file(shards / "shard-00000.json") + std::string(fuzz::kShardBinSeparator) +
                 read_file(shards / "shard-00000.bin"));
  // The same videos as JPEG frames, so that mutations reach the frame tables and the decoder.
  const fs::path jpeg_shards = videos / "jpeg-shards";
  data::prepare_shards(dataset, recipe, jpeg_shards,
                       {.threads = 1, .progress = false, .format = data::FrameFormat::jpeg});
  write_seed(corpus / "shard", "one_jpeg_shard",
             read_file(jpeg_shards / "manifest.json") + std::string(fuzz::kShardIndexSeparator) +
                 read_file(jpeg_shards / "shard-00000.json") +
                 std::string(fuzz::kShardBinSeparator) +
                 read_file(jpeg_shards / "shard-00000.bin"));
  write_seed(corpus / "recipe", "from_manifest.json",
             nlohmann::json::parse(manifest).at("recipe").dump());
  fs::remove_all(videos);
}

void recipe_seeds(const fs::path& folder) {
  for (const char* name : {"c3d", "keras", "tf-c3d"})
    write_seed(folder, std::string(name) + ".json",
               data::recipe_to_json(data::recipe_by_name(name)).dump(1));
  data::Recipe color = data::keras_recipe(16, false, true);
  color.mean = data::sports1m_mean(color.color);
  color.mean_source = "sports1m";
  write_seed(folder, "keras_color_sports1m.json", data::recipe_to_json(color).dump(1));
}

// The arguments a command cannot parse without, each with a placeholder value.
std::string required_arguments(const CLI::App& command) {
  std::string args;
  for (const CLI::Option* option : command.get_options())
    if (option->get_required())
      args += option->nonpositional() ? "\n" + option->get_name() + "\nx" : "\nx";
  return args;
}

// One argument as the user would write it: a flag alone, an option with its default.
std::string option_arguments(const CLI::Option& option) {
  if (option.get_expected_min() == 0) return option.get_name();
  return option.get_name() + "\n" + option.get_default_str();
}

// Per subcommand: one command line for each optional setting at its default, one with all of them,
// and --help. The CPU suite then checks that every one still parses.
void cli_seeds(const fs::path& folder) {
  const std::unique_ptr<CLI::App> app = apps::make_app();
  for (const CLI::App* command : app->get_subcommands({})) {
    const std::string base = command->get_name() + required_arguments(*command);
    std::string all = base;
    for (const CLI::Option* option : command->get_options()) {
      const bool has_value = option->get_expected_min() == 0 || !option->get_default_str().empty();
      if (option->get_required() || !option->nonpositional() || !has_value ||
          option->get_name() == "--help")
        continue;
      write_seed(folder, command->get_name() + option->get_name(),
                 base + "\n" + option_arguments(*option));
      all += "\n" + option_arguments(*option);
    }
    write_seed(folder, command->get_name() + "-all", all);
    write_seed(folder, command->get_name() + "-help", command->get_name() + "\n--help");
  }
}

// The config format's example (small enough to be built by the fuzz target) and every preset.
ModelConfig tiny_config() {
  return nlohmann::json::parse(R"({"name": "tiny", "input": [4, 8, 8, 1], "init": "pytorch",
    "layers": [{"type": "conv3d", "name": "conv1", "filters": 2, "kernel": 3, "padding": 1},
               {"type": "relu", "name": "relu1"},
               {"type": "max_pool3d", "name": "pool1", "window": 2},
               {"type": "flatten", "name": "flatten"},
               {"type": "dense", "name": "fc", "units": "classes"}]})");
}

void model_config_seeds(const fs::path& folder) {
  write_seed(folder, "tiny.json", tiny_config().dump(1));
  for (const std::string& name : preset_names())
    write_seed(folder, name + ".json", preset_config(name).dump(1));
}

// The tiny model's checkpoint, with and without Adam's state and caller metadata.
void checkpoint_seeds(const fs::path& folder) {
  fs::create_directories(folder);
  const ModelSpec spec{tiny_config(), fuzz::kFuzzClasses, {}};
  const std::shared_ptr<Module> model = build_model(spec.config, spec.num_classes);
  save_checkpoint(folder / "weights.safetensors", spec, *model);
  Adam adam(model->named_parameters(), AdamOptions{});
  save_checkpoint(folder / "with_adam.safetensors", spec, *model, &adam,
                  {{"epoch", "2"}, {"classes", "a,b,c"}});
}

std::string dims_text(const Tensor& tensor) {
  return fmt::format("{}", fmt::join(tensor.shape(), ","));
}

// The golden fixtures' weight files (tests/golden/, read from the repository root where
// scripts/fuzz.sh runs this) as the importers see them: each Keras file's layers, and the PyTorch
// C3D state dict, plus the same with a new head.
void import_names_seeds(const fs::path& folder) {
  const fs::path golden = "tests/golden";
  const std::pair<const char*, const char*> keras[] = {
      {"keras3d.weights.h5", "keras keras3d"},
      {"keras3d_keras2.h5", "keras keras3d"},
      {"keras3d_hwdc_model.h5", "keras keras3d hwdc"},
      {"keras3d_bn.weights.h5", "keras keras3d-bn"},
      {"cnn2d.weights.h5", "keras cnn2d new_head"}};
  for (const auto& [file, header] : keras) {
    std::string text = std::string(header) + "\n";
    for (const KerasLayer& layer : read_keras_h5(golden / file).layers)
      for (const auto& [path, tensor] : layer.weights)
        text += fmt::format("{} {} {}\n", layer.name, path, dims_text(tensor));
    write_seed(folder, fs::path(file).stem().string() + ".txt", text);
  }
  std::string text;
  for (const auto& [name, tensor] : load_safetensors(golden / "c3d_pytorch.safetensors").tensors)
    text += fmt::format("{} {}\n", name, dims_text(tensor));
  write_seed(folder, "c3d_pytorch.txt", "pytorch c3d\n" + text);
  write_seed(folder, "c3d_pytorch_new_head.txt", "pytorch c3d new_head\n" + text);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus folder>\n");
    return 2;
  }
  const fs::path corpus = argv[1];
  try {
    safetensors_seeds(corpus / "safetensors");
    dataset_seeds(corpus);
    recipe_seeds(corpus / "recipe");
    model_config_seeds(corpus / "model_config");
    model_config_seeds(corpus / "onnx_export");  // the exporter takes the same configs
    checkpoint_seeds(corpus / "checkpoint");
    cli_seeds(corpus / "cli");
    import_names_seeds(corpus / "import_names");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
