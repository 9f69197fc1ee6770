// `cu3d train`: flags -> TrainSettings and TrainData, then the trainer (apps/trainer.h). Ctrl-C
// saves a checkpoint and exits with status 130; `--resume` continues from it.
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/app.h"
#include "apps/compute_flags.h"
#include "apps/data_flags.h"
#include "apps/distributed_flags.h"
#include "apps/subcommands.h"
#include "apps/trainer.h"
#include "data/shard.h"
#include "engine/compute.h"
#include "engine/device.h"

namespace cu3d::apps {
namespace {

// The options that shape the training plan (config.json records each under its own name).
struct PlanOptions {
  CLI::Option *optimizer, *lr, *momentum, *weight_decay, *schedule, *warmup, *epochs, *batch, *seed;
};

struct TrainFlags {
  TrainSettings settings;
  std::string model = "keras3d";
  std::string data;
  DatasetFlags dataset;
  RecipeFlags recipe;
  std::string precision = "fp32";
  std::string backend = "conv=auto";
  std::string device = "cpu";
  bool no_fuse = false;
  bool pipelined_conv = true;
  bool fp32_tensor_cores = false;
  bool fp32_pipelined_conv = false;
  bool tf32_pipelined_bwd_filter = false;
  bool resident_layer_norm = false;
  int ensemble = 1;
  PlanOptions plan;
};

// The run's saved config.json (written when it started), or null when there is none.
nlohmann::json saved_config(const std::filesystem::path& output) {
  const std::filesystem::path path = output / "config.json";
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("--resume: {} is not valid JSON ({}); start a new --output",
                            path.string(), e.what()));
  }
}

// A plan value left off the command line is the run's; one given differently is refused.
template <class T>
void adopt(T& value, const nlohmann::json& saved, const std::string& key,
           const CLI::Option& option) {
  if (!saved.contains(key)) return;
  const T run_value = saved[key].get<T>();
  if (option.count() == 0) {
    value = run_value;
    return;
  }
  CU3D_CHECK(
      value == run_value,
      "{} {} differs from the run's {}: resume with the run's flags, or start a new --output",
      option.get_name(), value, run_value);
}

// --resume continues the saved plan exactly: the optimizer, its rate, schedule and warm-up, the
// batch and the seed come from the run's config.json unless given (then they must match it).
// --epochs alone may grow a constant-schedule run (the total, as the docs promise); a cosine or
// step schedule spreads over the total, so there it must match too.
void adopt_saved_plan(TrainFlags& f) {
  TrainSettings& s = f.settings;
  if (!s.resume) return;
  const nlohmann::json saved = saved_config(s.output);
  if (saved.is_null()) return;  // no run there: the trainer says so
  const PlanOptions& o = f.plan;
  adopt(s.optimizer, saved, "optimizer", *o.optimizer);
  adopt(s.lr, saved, "lr", *o.lr);
  adopt(s.momentum, saved, "momentum", *o.momentum);
  adopt(s.weight_decay, saved, "weight_decay", *o.weight_decay);
  adopt(s.schedule, saved, "schedule", *o.schedule);
  adopt(s.warmup, saved, "warmup", *o.warmup);
  adopt(s.batch, saved, "batch", *o.batch);
  adopt(s.seed, saved, "seed", *o.seed);
  if (s.schedule != "constant" || o.epochs->count() == 0)
    adopt(s.epochs, saved, "epochs", *o.epochs);
}

// Ctrl-C asks the trainer to stop after its current step and save; a second Ctrl-C kills at once
// (the handler restores the default action), for a step that never ends.
extern "C" void on_sigint(int) {
  request_stop();
  std::signal(SIGINT, SIG_DFL);
}

class SigintGuard {
 public:
  SigintGuard() : previous_(std::signal(SIGINT, on_sigint)) {}
  ~SigintGuard() { std::signal(SIGINT, previous_); }

 private:
  void (*previous_)(int);
};

void apply_compute_flags(TrainFlags& f) {
  const Device device = parse_device_flag(f.device, "train");
  f.settings.device = device;
  ComputeOptions& compute = compute_options();
  compute.precision = parse_flag("--precision", f.precision, parse_precision);
  compute.backends = parse_flag("--backend", f.backend, parse_backends);
  compute.fuse = !f.no_fuse;
  compute.pipelined_conv = f.pipelined_conv;
  compute.fp32_tensor_cores = f.fp32_tensor_cores;
  compute.fp32_pipelined_conv = f.fp32_pipelined_conv;
  compute.tf32_pipelined_bwd_filter = f.tf32_pipelined_bwd_filter;
  compute.resident_layer_norm = f.resident_layer_norm;
  print_compute(device, compute.precision, "train");
}

// Shards when the folder has a manifest, else videos decoded on every read (no prep needed).
TrainData open_train_data(const TrainFlags& f, const std::string& default_recipe) {
  TrainData data;
  if (is_shard_folder(f.data)) {
    std::vector<const CLI::Option*> fixed = split_options(f.dataset);
    fixed.push_back(f.recipe.mean_option);
    refuse_prep_fixed(fixed, f.data);
    auto shards = std::make_shared<data::ShardSet>(f.data);
    CU3D_CHECK(f.dataset.nclass == 0 || size_t(f.dataset.nclass) == shards->classes().size(),
               "--nclass {}: the shards in {} hold {} classes; prepare again with --nclass",
               f.dataset.nclass, f.data, shards->classes().size());
    data.train = std::make_unique<data::ShardSource>(*shards, data::Side::train);
    data.test = std::make_unique<data::ShardSource>(*shards, data::Side::test);
    data.recipe = adapt_shard_recipe(shards->recipe(), f.recipe, f.data);
    data.classes = shards->classes();
    data.description = fmt::format("shards {} (split: {})", f.data, shards->split());
    data.owner = shards;
    return data;
  }
  const data::Dataset dataset = open_dataset(f.data, f.dataset);
  data.recipe = make_recipe(f.recipe, default_recipe);
  if (data.recipe.mean_source == "dataset")
    fmt::print(stderr,
               "train: warning: the training-split mean is computed by cu3d prep; on raw videos "
               "no mean is subtracted (prepare shards, or pass --mean none to silence this)\n");
  data.train = std::make_unique<data::VideoSource>(dataset.train, data.recipe);
  data.test = std::make_unique<data::VideoSource>(dataset.test, data.recipe);
  data.classes = dataset.classes;
  data.description = fmt::format("videos {} (split: {})", f.data, dataset.split);
  return data;
}

void run_train(TrainFlags f) {
  check_plan_names(f.settings);
  apply_compute_flags(f);
  adopt_saved_plan(f);
  TrainSettings& s = f.settings;
  s.device = data_parallel_device(dist::world(), s.device, f.device);
  s.comm = &dist::world_for(s.device);
  s.model = load_model_config(f.model);
  CU3D_CHECK(f.ensemble >= 1 && f.ensemble <= 64, "--ensemble {} must be in 1..64", f.ensemble);
  if (f.ensemble > 1) s.model["ensemble"] = f.ensemble;
  // Models for 112x112 inputs (C3D) want the c3d recipe; the Keras family and cnn2d the keras one.
  const Shape input = config_input_shape(s.model);
  const std::string default_recipe =
      input.size() >= 3 && input[input.size() - 2] >= 100 ? "c3d" : "keras";
  TrainData data = open_train_data(f, default_recipe);
  s.command_line = current_command_line();
  s.progress_tty = isatty(fileno(stdout)) != 0;
  SigintGuard sigint;
  if (train(s, data) == TrainOutcome::interrupted) throw ExitStatus{130};
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  TrainSettings& s = f->settings;
  PlanOptions& o = f->plan;
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a model on shards (from cu3d prep) or directly on a video folder. After every "
      "epoch it evaluates on the test split (clip and video accuracy, top-1 and top-5) and "
      "writes into --output: checkpoint-last/best.safetensors, result.txt, classes.txt, "
      "model_accuracy.png, model_loss.png, confusion_matrix.png, summary.txt, model.dot, "
      "config.json and command.txt. Ctrl-C saves a checkpoint and exits (status 130); the same "
      "command plus --resume continues it exactly (flags left out come from the run).\n"
      "Example: cu3d train --model keras3d --data motion-shards --epochs 10 --output runs/k3d\n"
      "The Keras tool's flags work too: --videos DIR --epoch N --nclass N --color --skip "
      "--depth N.");
  cmd->add_option("--model", f->model,
                  "a preset (c3d, c3d-ln, keras3d, keras3d-bn, keras3d-leaky, keras3d-relu, "
                  "cnn2d) or a JSON config file")
      ->capture_default_str();
  cmd->add_option("--data,--videos", f->data,
                  "shard folder, or a video folder (decoded on the fly)")
      ->required();
  add_dataset_flags(*cmd, f->dataset);
  add_recipe_flags(*cmd, f->recipe);
  o.batch = cmd->add_option("--batch", s.batch, "clips per step")->capture_default_str();
  o.epochs =
      cmd->add_option("--epochs,--epoch", s.epochs, "epochs to train (in total, with --resume)")
          ->capture_default_str();
  o.lr = cmd->add_option("--lr", s.lr, "learning rate")->capture_default_str();
  o.optimizer = cmd->add_option("--optimizer", s.optimizer, "adam or sgd")->capture_default_str();
  o.momentum = cmd->add_option("--momentum", s.momentum, "SGD momentum")->capture_default_str();
  o.weight_decay =
      cmd->add_option("--weight-decay", s.weight_decay, "L2 weight decay")->capture_default_str();
  o.schedule =
      cmd->add_option("--schedule", s.schedule,
                      "learning-rate schedule: constant, cosine (to 0 at the last step) or step "
                      "(x0.1 after each third)")
          ->capture_default_str();
  o.warmup =
      cmd->add_option("--warmup", s.warmup, "steps of linear warm-up")->capture_default_str();
  add_precision_flag(*cmd, f->precision);
  cmd->add_option("--backend", f->backend,
                  "on CUDA, which library runs each op that cuDNN also has: cu3d, cudnn or auto "
                  "(time both on first use, keep the faster) for every op, or op=backend for one "
                  "(ops: conv, pool, activation, softmax, batch_norm), comma-separated and applied "
                  "in order, e.g. cudnn,conv=auto; the ops not named keep conv=auto and cu3d")
      ->capture_default_str();
  add_device_flag(*cmd, f->device);
  cmd->add_flag("--no-fuse", f->no_fuse,
                "run conv, ReLU and max-pool as separate ops instead of fused blocks (the same "
                "results; for comparison and profiling)");
  cmd->add_flag("--pipelined-conv,!--no-pipelined-conv", f->pipelined_conv,
                "CUDA, cu3d backend, tf32/bf16: the conv's pipelined kernels where they apply "
                "(on Hopper with an sm_90a build version 7 for the forward and stride-1 "
                "backward-data, else version 5; elsewhere version 3; bwd-filter's version 3 in "
                "bf16), version 2 for the rest; --no-pipelined-conv runs version 2 throughout "
                "(docs/kernels/conv3d_cuda.md)")
      ->capture_default_str();
  cmd->add_flag("--fp32-tensor-cores", f->fp32_tensor_cores,
                "CUDA, cu3d backend, fp32 on Hopper: the convs' three passes as three tf32 "
                "products on the tensor cores (3xTF32: errors of FFMA's order), not version 2's "
                "FFMA; needs 12 bytes of workspace per element of the operands (not yet run on "
                "a GPU)");
  cmd->add_flag("--fp32-pipelined-conv", f->fp32_pipelined_conv,
                "CUDA, cu3d backend, fp32: the convs' forward and backward-data on version 3's "
                "FFMA form (cp.async ring, 128 x 128 tiles, 8 x 8 outputs per thread) rather "
                "than version 2 (not yet run on a GPU)");
  cmd->add_flag("--tf32-pipelined-bwd-filter", f->tf32_pipelined_bwd_filter,
                "CUDA, cu3d backend, tf32: bwd-filter's version 3 (cp.async ring, tensor-core "
                "fragments loaded from shared memory) rather than version 2 (not yet run on a "
                "GPU)");
  cmd->add_flag("--resident-layer-norm", f->resident_layer_norm,
                "CUDA: the per-sample layer norm (c3d-ln) held in the shared memory of a team of "
                "blocks resident together, each sample read from memory once, not the pipelined "
                "kernels that read it twice (not yet run on a GPU)");
  cmd->add_option("--workers", s.workers, "loader threads")->capture_default_str();
  o.seed = cmd->add_option("--seed", s.seed, "seed of the weights, batch order and dropout")
               ->capture_default_str();
  cmd->add_option("--output", s.output, "run folder (created)")->required();
  cmd->add_flag("--resume", s.resume,
                "continue the run in --output from checkpoint-last with its saved --optimizer, "
                "--lr, --momentum, --weight-decay, --schedule, --warmup, --epochs, --batch and "
                "--seed (given ones must match; --epochs may grow a constant-schedule run)");
  cmd->add_option("--init", s.init,
                  "start from a checkpoint's weights, a Keras .h5 or a PyTorch C3D "
                  ".safetensors (the head is new when the class count differs)");
  cmd->add_option("--keras-order", s.keras_order,
                  "axis order of the clips a Keras --init file was trained on: dhwc, or hwdc "
                  "as the Keras 3D CNN scripts feed them")
      ->check(CLI::IsMember({"dhwc", "hwdc"}))
      ->capture_default_str();
  cmd->add_option("--ensemble", f->ensemble, "train N copies of the model as one ensemble")
      ->capture_default_str();
  add_data_parallel_flags(*cmd, s.dist);
  cmd->add_flag("--check-numerics", s.check_numerics,
                "test every layer's output and gradient for NaN/Inf and stop naming the first "
                "layer that went non-finite (slower: each check copies to the host)");
  cmd->add_option("--clip-grad-norm", s.clip_grad_norm,
                  "clip the gradients' global L2 norm to this value (0: off)")
      ->capture_default_str();
  cmd->callback([f] { run_train(*f); });
}

}  // namespace cu3d::apps
