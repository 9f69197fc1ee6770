// The parsers' entry points of fuzz/parser_inputs.h: one compiled copy shared by the fuzz
// targets and the CPU suite's replay.
#include "fuzz/parser_inputs.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "apps/app.h"
#include "data/recipe.h"
#include "data/shard.h"
#include "data/split_list.h"
#include "data/ucf_name.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/models.h"

namespace cu3d::fuzz {
// engine/safetensors: checkpoint files from other people and frameworks.
bool parse_safetensors_input(Bytes bytes) {
  return accepted([&] {
    const SafetensorsContents contents = parse_safetensors(bytes, "fuzz.safetensors");
    uint64_t tensor_bytes = 0;
    for (const auto& [name, tensor] : contents.tensors)
      tensor_bytes += tensor.nbytes();
    require(tensor_bytes <= bytes.size(), "safetensors: tensors hold more bytes than the file");
  });
}

namespace {

// A path component the split list lets through becomes a folder or file name under the dataset.
bool is_confined(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\\') == std::string_view::npos;
}

}  // namespace

// data/split_list: UCF101's classInd.txt and train/test lists. Every input goes to both parsers;
// accepted when either takes it.
bool parse_split_list_input(Bytes bytes) {
  const std::string_view text = as_text(bytes);
  const bool classes_ok = accepted([&] {
    for (const std::string& name : data::parse_class_index(text, "classInd.txt"))
      require(is_confined(name), "split list: class name leaves the dataset folder");
  });
  const bool list_ok = accepted([&] {
    for (const data::ListEntry& entry : data::parse_split_list(text, "trainlist01.txt")) {
      const size_t slash = entry.relative_path.find('/');
      require(slash != std::string::npos &&
                  is_confined(std::string_view(entry.relative_path).substr(0, slash)) &&
                  is_confined(std::string_view(entry.relative_path).substr(slash + 1)),
              "split list: path is not <Class>/<file> inside the dataset");
      require(entry.relative_path.starts_with(entry.class_name + "/"),
              "split list: class name differs from the path's folder");
      require(entry.label >= 0, "split list: negative label");
    }
  });
  return classes_ok || list_ok;
}

// data/ucf_name: file names found in a dataset folder (they give the class and the split group).
bool parse_ucf_name_input(Bytes bytes) {
  const auto name = data::parse_ucf_name(as_text(bytes));
  if (!name) return false;
  require(!name->class_name.empty(), "ucf name: empty class");
  require(name->group >= 0 && name->clip >= 0, "ucf name: the g/c numbers are digits only");
  const auto again = data::parse_ucf_name(data::format_ucf_name(*name));
  require(again && again->class_name == name->class_name && again->group == name->group &&
              again->clip == name->clip,
          "ucf name: format_ucf_name does not parse back to the same name");
  return true;
}

// data/recipe: recipes inside shard manifests and checkpoints. What is accepted must survive the
// JSON round trip unchanged, or prediction would cut clips differently from training.
bool parse_recipe_input(Bytes bytes) {
  const nlohmann::json json = nlohmann::json::parse(as_text(bytes), nullptr, false);
  if (json.is_discarded()) return false;
  return accepted([&] {
    const data::Recipe recipe = data::recipe_from_json(json, "fuzz-recipe.json");
    const nlohmann::json written = data::recipe_to_json(recipe);
    require(data::recipe_to_json(data::recipe_from_json(written, "round trip")) == written,
            "recipe: does not survive recipe_to_json -> recipe_from_json");
  });
}

namespace {

// A folder of this process's own for the parsers that read files (tmpfs when there is one: each
// input is written there first), removed at exit.
class ScratchFolder {
 public:
  ScratchFolder() {
    const std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    path_ = base / ("cu3d-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

const std::filesystem::path& scratch_folder() {
  static const ScratchFolder folder;
  return folder.path();
}

void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

// data/shard: the manifest and shard index written by `prep`, read back by training. A missing
// separator leaves the later files empty, which the reader must reject like any other damage.
bool parse_shard_input(Bytes bytes) {
  std::string_view text = as_text(bytes);
  auto cut = [&](std::string_view separator) {
    const size_t at = text.find(separator);
    const std::string_view before = text.substr(0, at);
    text = at == std::string_view::npos ? std::string_view() : text.substr(at + separator.size());
    return before;
  };
  const std::filesystem::path& folder = scratch_folder();
  write_file(folder / "manifest.json", cut(kShardIndexSeparator));
  write_file(folder / "shard-00000.json", cut(kShardBinSeparator));
  const size_t bin_bytes = text.size();
  write_file(folder / "shard-00000.bin", text);
  return accepted([&] {
    const data::ShardSet shards(folder);
    data::Clip clip;
    for (size_t i = 0; i < shards.size(); ++i) {
      require(shards.video(i).bytes <= bin_bytes, "shard: a video is larger than its shard");
      shards.verify(i);  // reads every byte the index claims
      // Every frame: a copy from a raw shard, a decode of hostile bytes from a JPEG one, which may
      // refuse a corrupt frame (cu3d::Error) but must never read or write out of bounds.
      shards.read_video(i, clip);
    }
  });
}

namespace {

// Shape inference is the validator (summarize_model); whatever it accepts, build_model must build
// with the parameter count it promised, and the model must map one clip to `classes` outputs.
void check_model(const ModelConfig& config, int classes, const Shape& input) {
  const ModelSummary summary = summarize_model(config, classes, input);
  if (summary.parameters + summary.buffers > kMaxBuiltParameters || summary.macs > kMaxBuiltMacs)
    return;
  try {
    const std::shared_ptr<Module> model = build_model(config, classes, input);
    require(model->parameter_count() == summary.parameters,
            "model: build_model and summarize_model disagree on the parameter count");
    Shape batch{1};
    batch.insert(batch.end(), summary.input.begin(), summary.input.end());
    Generator gen(1);
    autograd::NoGradGuard no_grad;
    model->eval();
    const Tensor output = (*model)(Tensor::uniform(batch, 0, 1, gen));
    require(output.shape() == Shape{1, classes}, "model: output is not (1, classes)");
  } catch (const Error& e) {
    throw PropertyViolation(std::string("model: summarize_model accepted a config that ") +
                            "build_model or forward rejects: " + e.what());
  }
}

}  // namespace

// layers/models: model configs written by users (`--model my.json`).
bool parse_model_config_input(Bytes bytes) {
  const nlohmann::json config = nlohmann::json::parse(as_text(bytes), nullptr, false);
  if (config.is_discarded()) return false;
  return accepted([&] { check_model(config, kFuzzClasses, {}); });
}

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

namespace {

// Thrown where the command line has been parsed and validated, to stop before any command runs.
struct ParsedOnly {};

// One argument per line of the input, after the program name.
std::vector<std::string> command_line_arguments(std::string_view text) {
  std::vector<std::string> args{"cu3d"};
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    args.emplace_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return args;
}

}  // namespace

// apps/: the `cu3d` command line. Every option's conversion and validator runs, but no command:
// the top-level app's parse-complete callback, which CLI11 runs after every option is converted
// and checked and before any subcommand's callback, throws ParsedOnly. (Clearing the subcommands'
// callbacks instead, as make_app(false) does, frees the option values their lambdas own, and
// parsing then writes into freed memory.) Accepted: parsed, or a request for help; rejected: a
// CLI::ParseError (an unknown, missing or malformed argument) or a cu3d::Error from a validator.
bool parse_command_line_input(Bytes bytes) {
  const std::unique_ptr<CLI::App> app = apps::make_app();
  app->parse_complete_callback([] { throw ParsedOnly{}; });
  const std::vector<std::string> args = command_line_arguments(as_text(bytes));
  std::vector<const char*> argv;
  for (const std::string& arg : args)
    argv.push_back(arg.c_str());
  try {
    app->parse(int(argv.size()), argv.data());
    return true;
  } catch (const ParsedOnly&) {
    return true;
  } catch (const CLI::CallForHelp&) {
    return true;
  } catch (const CLI::CallForAllHelp&) {
    return true;
  } catch (const CLI::ParseError&) {
    return false;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace cu3d::fuzz
