#include "layers/checkpoint.h"

#include <set>

#include <fmt/ranges.h>

#include "engine/autograd.h"
#include "engine/checksum.h"
#include "engine/safetensors.h"

namespace cu3d {
namespace {

using json = nlohmann::json;

constexpr const char* kConfigKey = "cu3d.model_config";
constexpr const char* kClassesKey = "cu3d.num_classes";
constexpr const char* kInputKey = "cu3d.input";
constexpr const char* kChecksumKey = "cu3d.checksum";
constexpr const char* kOptimizerPrefix = "optimizer.";
// At most this many problems are listed in one error; the rest are counted.
constexpr std::size_t kMaxListedProblems = 8;

// Every tensor the model (and optimizer) hold, by checkpoint name.
NamedTensors expected_tensors(const Module& model, const Optimizer* optimizer) {
  NamedTensors all = model.named_parameters();
  for (auto& entry : model.named_buffers())
    all.push_back(std::move(entry));
  if (optimizer)
    for (auto& [name, tensor] : optimizer->state())
      all.emplace_back(kOptimizerPrefix + name, tensor);
  return all;
}

// FNV-1a over every tensor's name, dtype, shape and bytes, by name (the file's order is the
// writer's business), as 16 hex digits.
std::string tensors_checksum(const NamedTensors& tensors) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, tensor] : tensors)
    by_name[name] = &tensor;
  uint64_t state = kFnvOffsetBasis;
  auto hash_text = [&](const std::string& text) {
    state = fnv1a64(reinterpret_cast<const uint8_t*>(text.c_str()), text.size() + 1, state);
  };
  for (const auto& [name, tensor] : by_name) {
    hash_text(name);
    hash_text(std::string(dtype_name(tensor->dtype())) + shape_str(tensor->shape()));
    const Tensor host = tensor->to(Device::cpu());
    state = fnv1a64(static_cast<const uint8_t*>(host.raw_data()), host.nbytes(), state);
  }
  return fmt::format("{:016x}", state);
}

// Files without a checksum (written by other tools, or by cu3d before it stored one) are
// accepted; one that is present must match.
void verify_checksum(const SafetensorsContents& contents, const std::string& source) {
  const auto stored = contents.metadata.find(kChecksumKey);
  if (stored == contents.metadata.end()) return;
  const std::string actual = tensors_checksum(contents.tensors);
  CU3D_CHECK(stored->second == actual,
             "{}: checksum mismatch (stored {}, computed {}): the file was altered or damaged "
             "after it was written; use another checkpoint (e.g. checkpoint-best) or retrain",
             source, stored->second, actual);
}

json parse_metadata_json(const std::map<std::string, std::string>& metadata, const char* key,
                         const std::string& source) {
  const auto found = metadata.find(key);
  CU3D_CHECK(found != metadata.end(),
             "{}: no '{}' in the metadata; is it a cu3d checkpoint (and not a bare weight file)?",
             source, key);
  try {
    return json::parse(found->second);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: metadata '{}' is not valid JSON ({})", source, key, e.what()));
  }
}

}  // namespace

std::string list_problems(const std::vector<std::string>& problems) {
  std::string out;
  for (std::size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i)
    out += "\n  " + problems[i];
  if (problems.size() > kMaxListedProblems)
    out += fmt::format("\n  ... and {} more", problems.size() - kMaxListedProblems);
  return out;
}

void save_checkpoint(const std::filesystem::path& path, const ModelSpec& spec, const Module& model,
                     const Optimizer* optimizer,
                     const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> meta;
  for (const auto& [key, value] : metadata) {
    CU3D_CHECK(!key.starts_with("cu3d."),
               "save_checkpoint {}: metadata key '{}' is reserved (keys starting with 'cu3d.' are "
               "the checkpoint's own)",
               path.string(), key);
    meta[key] = value;
  }
  meta[kConfigKey] = spec.config.dump();
  meta[kClassesKey] = std::to_string(spec.num_classes);
  meta[kInputKey] = json(spec.input).dump();
  const NamedTensors tensors = expected_tensors(model, optimizer);
  meta[kChecksumKey] = tensors_checksum(tensors);
  save_safetensors(path, tensors, meta);
}

Checkpoint read_checkpoint(const std::filesystem::path& path) {
  const std::string source = "checkpoint " + path.string();
  SafetensorsContents contents = load_safetensors(path);
  verify_checksum(contents, source);
  Checkpoint checkpoint;
  checkpoint.source = source;
  checkpoint.model.config = parse_metadata_json(contents.metadata, kConfigKey, source);
  CU3D_CHECK(checkpoint.model.config.is_object(), "{}: '{}' must be a JSON object", source,
             kConfigKey);
  const json classes = parse_metadata_json(contents.metadata, kClassesKey, source);
  CU3D_CHECK(classes.is_number_integer() && classes.get<int64_t>() >= 1 &&
                 classes.get<int64_t>() <= (1 << 20),
             "{}: '{}' must be a positive class count, got {}", source, kClassesKey,
             classes.dump());
  checkpoint.model.num_classes = classes.get<int>();
  const json input = parse_metadata_json(contents.metadata, kInputKey, source);
  CU3D_CHECK(input.is_array() && input.size() <= 4, "{}: '{}' must list at most 4 extents", source,
             kInputKey);
  for (const json& extent : input) {
    CU3D_CHECK(extent.is_number_integer() && extent.get<int64_t>() >= 1 &&
                   extent.get<int64_t>() <= (1 << 20),
               "{}: '{}' has an invalid extent {}", source, kInputKey, extent.dump());
    checkpoint.model.input.push_back(extent.get<int64_t>());
  }
  for (auto& [key, value] : contents.metadata)
    if (!key.starts_with("cu3d.")) checkpoint.metadata[key] = value;
  checkpoint.tensors = std::move(contents.tensors);
  return checkpoint;
}

void restore_checkpoint(const Checkpoint& checkpoint, Module& model, Optimizer* optimizer) {
  const std::string& source = checkpoint.source;
  std::map<std::string, const Tensor*> stored;
  bool has_optimizer_state = false;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    stored[name] = &tensor;
    has_optimizer_state |= name.starts_with(kOptimizerPrefix);
  }
  CU3D_CHECK(!optimizer || has_optimizer_state,
             "{} holds no optimizer state (it was saved without one); restore only the weights "
             "and start the optimizer afresh",
             source);
  const NamedTensors expected = expected_tensors(model, optimizer);
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (const auto& [name, tensor] : expected) {
    const auto found = stored.find(name);
    if (found == stored.end()) {
      problems.push_back(fmt::format("missing tensor '{}' {}: the model has it, the file does not",
                                     name, shape_str(tensor.shape())));
      continue;
    }
    used.insert(name);
    const Tensor& saved = *found->second;
    if (saved.shape() != tensor.shape() || saved.dtype() != tensor.dtype())
      problems.push_back(fmt::format("tensor '{}' is {} {} in the file but {} {} in the model",
                                     name, dtype_name(saved.dtype()), shape_str(saved.shape()),
                                     dtype_name(tensor.dtype()), shape_str(tensor.shape())));
  }
  for (const auto& [name, tensor] : checkpoint.tensors) {
    const bool ignored_state = !optimizer && name.starts_with(kOptimizerPrefix);
    if (!used.count(name) && !ignored_state)
      problems.push_back(
          fmt::format("unexpected tensor '{}' {}: the file has it, the model does not", name,
                      shape_str(tensor.shape())));
  }
  CU3D_CHECK(
      problems.empty(),
      "{} does not match the model ({} problem(s); was it saved from another config or class "
      "count?):{}",
      source, problems.size(), list_problems(problems));
  autograd::NoGradGuard no_grad;
  for (const auto& [name, tensor] : expected) {
    Tensor target = tensor;
    target.copy_from(*stored.at(name));
  }
}

std::shared_ptr<Module> load_model(const std::filesystem::path& path) {
  const Checkpoint checkpoint = read_checkpoint(path);
  std::shared_ptr<Module> model =
      build_model(checkpoint.model.config, checkpoint.model.num_classes, checkpoint.model.input);
  restore_checkpoint(checkpoint, *model);
  return model;
}

}  // namespace cu3d
