#include "apps/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/import_weights.h"
#include "apps/model_io.h"
#include "apps/plots.h"
#include "apps/tensorboard_events.h"
#include "data/device_feeder.h"
#include "data/loader.h"
#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/numerics.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/optim/lr_schedule.h"
#include "layers/basic.h"
#include "layers/conv_block.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// volatile sig_atomic_t would do for the handler alone; atomic<bool> is lock-free and also safe
// from the test hook's thread.
std::atomic<bool> g_stop{false};

struct History {
  std::vector<double> loss, acc, val_loss, val_acc;
};

// Everything a checkpoint must restore besides tensors for a resumed run to continue exactly.
struct RunState {
  int epoch = 0;        // the epoch in progress (0-based)
  int64_t batch = 0;    // batches of `epoch` already trained
  int64_t step = 0;     // optimizer steps so far (the LR schedule's clock)
  double loss_sum = 0;  // the running epoch totals, so a resumed epoch reports the same numbers
  int64_t correct = 0, seen = 0;
  double best = -1;  // best video top-1 so far
  int best_epoch = 0;
  History history;
  std::vector<uint64_t> dropout_calls;
  int batch_size = 0;  // the batch order depends on these two: a resume must keep them
  uint64_t seed = 0;
};

json to_json(const RunState& s) {
  return {{"epoch", s.epoch},
          {"batch", s.batch},
          {"step", s.step},
          {"loss_sum", s.loss_sum},
          {"correct", s.correct},
          {"seen", s.seen},
          {"best", s.best},
          {"best_epoch", s.best_epoch},
          {"history",
           {{"loss", s.history.loss},
            {"acc", s.history.acc},
            {"val_loss", s.history.val_loss},
            {"val_acc", s.history.val_acc}}},
          {"dropout_calls", s.dropout_calls},
          {"batch_size", s.batch_size},
          {"seed", s.seed}};
}

RunState run_state_from_json(const std::string& text, const std::string& source) {
  try {
    const json j = json::parse(text);
    RunState s;
    s.epoch = j.at("epoch").get<int>();
    s.batch = j.at("batch").get<int64_t>();
    s.step = j.at("step").get<int64_t>();
    s.loss_sum = j.at("loss_sum").get<double>();
    s.correct = j.at("correct").get<int64_t>();
    s.seen = j.at("seen").get<int64_t>();
    s.best = j.at("best").get<double>();
    s.best_epoch = j.at("best_epoch").get<int>();
    const json& h = j.at("history");
    s.history = {h.at("loss").get<std::vector<double>>(), h.at("acc").get<std::vector<double>>(),
                 h.at("val_loss").get<std::vector<double>>(),
                 h.at("val_acc").get<std::vector<double>>()};
    s.dropout_calls = j.at("dropout_calls").get<std::vector<uint64_t>>();
    s.batch_size = j.at("batch_size").get<int>();
    s.seed = j.at("seed").get<uint64_t>();
    CU3D_CHECK(
        s.epoch >= 0 && s.batch >= 0 && s.step >= 0 && s.history.loss.size() == size_t(s.epoch),
        "inconsistent counters");
    return s;
  } catch (const std::exception& e) {
    throw Error(
        fmt::format("{}: metadata '{}' is not a cu3d training state ({}); resume from a "
                    "checkpoint written by cu3d train",
                    source, kStateKey, e.what()));
  }
}

void collect_dropouts(Module& module, std::vector<Dropout*>& out) {
  if (auto* d = dynamic_cast<Dropout*>(&module)) out.push_back(d);
  for (const auto& [name, child] : module.children())
    collect_dropouts(*child, out);
}

// `lr` is --lr scaled for data parallelism.
std::unique_ptr<Optimizer> make_optimizer(const TrainSettings& s, double lr, NamedTensors params) {
  if (s.optimizer == "adam")
    return std::make_unique<Adam>(std::move(params),
                                  AdamOptions{.lr = lr, .weight_decay = s.weight_decay});
  return std::make_unique<SGD>(
      std::move(params),
      SgdOptions{.lr = lr, .momentum = s.momentum, .weight_decay = s.weight_decay});
}

LrSchedule make_schedule(const TrainSettings& s, double lr, int64_t total_steps) {
  if (s.schedule == "constant") return LrSchedule::constant(lr, s.warmup);
  if (s.schedule == "cosine") return LrSchedule::cosine(lr, total_steps, 0, s.warmup);
  // Two tenfold drops over the run, as C3D's recipe divides its rate by 10 twice.
  return LrSchedule::step(lr, std::max<int64_t>(1, total_steps / 3), 0.1, s.warmup);
}

// Mean loss of one batch and how many of its clips the model got right. An Ensemble's members
// are run one by one (the mean of their cross-entropies is Ensemble::loss) so that their averaged
// probabilities also give the training accuracy without a second forward pass.
struct StepOutput {
  Tensor loss;
  int64_t correct = 0;
};

int64_t count_correct(const std::vector<float>& scores, const std::vector<int32_t>& labels,
                      int classes) {
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i)
    correct += top_k(scores.data() + i * classes, classes, 1)[0] == labels[i];
  return correct;
}

std::vector<float> softmax_rows(const Tensor& logits) {
  std::vector<float> p = logits.to_vector<float>();
  const int64_t classes = logits.size(1);
  for (size_t row = 0; row < p.size(); row += size_t(classes)) {
    float* r = p.data() + row;
    const float top = *std::max_element(r, r + classes);
    double total = 0;
    for (int64_t c = 0; c < classes; ++c)
      total += r[c] = std::exp(r[c] - top);
    for (int64_t c = 0; c < classes; ++c)
      r[c] = float(r[c] / total);
  }
  return p;
}

StepOutput forward_loss(Module& model, const Tensor& x, const Tensor& labels, int classes) {
  const std::vector<int32_t> truth = labels.to_vector<int32_t>();
  auto* ensemble = dynamic_cast<Ensemble*>(&model);
  if (ensemble == nullptr) {
    const Tensor logits = model(x);
    return {softmax_cross_entropy(logits, labels),
            count_correct(logits.to_vector<float>(), truth, classes)};
  }
  Tensor total;
  std::vector<float> mean(truth.size() * classes, 0.f);
  for (size_t m = 0; m < ensemble->size(); ++m) {
    const Tensor logits = ensemble->member(m)(x);
    const Tensor l = softmax_cross_entropy(logits, labels);
    total = total.defined() ? add(total, l) : l;
    const std::vector<float> p = softmax_rows(logits);
    for (size_t i = 0; i < p.size(); ++i)
      mean[i] += p[i];
  }
  return {scale(total, 1.0 / double(ensemble->size())), count_correct(mean, truth, classes)};
}

std::string duration(double seconds) {
  const int64_t s = int64_t(std::max(0.0, seconds) + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

// The per-epoch progress: one line rewritten in place on a terminal; on a pipe or file, a plain
// line about every quarter of the epoch so logs stay short.
class Progress {
 public:
  Progress(bool tty, int epoch, int epochs, int64_t batches, int64_t first_batch)
      : tty_(tty), epoch_(epoch), epochs_(epochs), batches_(batches), first_(first_batch) {}

  void update(int64_t batch, double loss, double acc, int64_t clips) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const int64_t done = batch - first_;
    const double rate = elapsed > 0 ? double(clips) / elapsed : 0;
    const double eta = done > 0 ? elapsed / double(done) * double(batches_ - batch) : 0;
    const std::string line =
        fmt::format("epoch {}/{}  {}/{}  loss {:.4f}  acc {:.4f}  {:.1f} clips/s  ETA {}",
                    epoch_ + 1, epochs_, batch, batches_, loss, acc, rate, duration(eta));
    if (tty_) {
      std::printf("\r%s\x1b[K", line.c_str());
    } else if (batch == batches_ || batch * 4 / batches_ != (batch - 1) * 4 / batches_) {
      std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
  }
  void end() {
    if (tty_) std::printf("\n");
  }

 private:
  bool tty_;
  int epoch_, epochs_;
  int64_t batches_, first_;
  Clock::time_point start_ = Clock::now();
};

// How the step computes: the CUDA options on a GPU; on the CPU they do not apply (it computes in
// fp32 with its own kernels), only whether the conv blocks are fused.
std::string describe_compute(const Device& device) {
  if (device.is_cuda()) return describe_compute_options();
  return fmt::format("fp32 on the cpu, fusion {}", compute_options().fuse ? "on" : "off");
}

std::string read_text(const fs::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return {};
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;)
    text.append(buffer, n);
  std::fclose(f);
  return text;
}

// One training run: the model, optimizer and state, and the output folder they write.
class Run {
 public:
  Run(const TrainSettings& settings, TrainData& data, dist::Communicator& comm)
      : s_(settings),
        data_(data),
        comm_(comm),
        writer_(comm.rank() == 0),
        lr_(scaled_lr(settings.lr, settings.dist, comm.size())) {
    const int rank = int(config_input_shape(s_.model).size());
    recipe_ = rank == 3 ? single_frame_recipe(data.recipe) : data.recipe;
    spec_ = {s_.model, int(data.classes.size()), model_input_shape(recipe_, rank)};
  }

  TrainOutcome run();

 private:
  void open_or_resume();
  void init_from(const fs::path& path);
  void write_run_files();
  void train_epoch(data::Loader& loader);
  StepOutput forward_backward(const Tensor& x, const Tensor& labels);
  void end_epoch();
  void save(const fs::path& path);
  json state_json();

  const TrainSettings& s_;
  TrainData& data_;
  dist::Communicator& comm_;
  bool writer_;  // rank 0 writes the run's files
  double lr_;    // --lr scaled for data parallelism (config.json records --lr itself)
  std::unique_ptr<dist::GradReducer> reducer_;
  data::Recipe recipe_;
  ModelSpec spec_;
  std::shared_ptr<Module> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<Dropout*> dropouts_;
  RunState state_;
  std::unique_ptr<TrainingEvents> events_;
  std::string last_good_ = "none yet";
  bool interrupted_ = false;
};

void Run::open_or_resume() {
  const fs::path last = last_checkpoint(s_.output);
  if (!s_.resume) {
    CU3D_CHECK(!fs::exists(last),
               "{} already holds a run ({}); pass --resume to continue it or choose another "
               "--output",
               s_.output.string(), last.string());
    state_.batch_size = s_.batch;
    state_.seed = s_.seed;
    model_ = build_model(spec_.config, spec_.num_classes, spec_.input, s_.seed);
    model_->to(s_.device);
    optimizer_ = make_optimizer(s_, lr_, model_->named_parameters());
    collect_dropouts(*model_, dropouts_);
    if (!s_.init.empty()) init_from(s_.init);
    return;
  }
  CU3D_CHECK(fs::exists(last), "--resume: {} not found; start the run without --resume",
             last.string());
  const Checkpoint checkpoint = read_checkpoint(last);
  CU3D_CHECK(checkpoint.model.config == spec_.config && checkpoint.model.input == spec_.input &&
                 checkpoint.model.num_classes == spec_.num_classes,
             "--resume: {} was trained with another model, input or class count; resume with "
             "the same --model and data, or choose another --output",
             last.string());
  const auto state = checkpoint.metadata.find(kStateKey);
  CU3D_CHECK(state != checkpoint.metadata.end(),
             "{}: no '{}' metadata; it is not a cu3d train "
             "checkpoint",
             last.string(), kStateKey);
  state_ = run_state_from_json(state->second, last.string());
  CU3D_CHECK(state_.batch_size == s_.batch && state_.seed == s_.seed,
             "--resume: {} was trained with --batch {} --seed {}; resume with the same values "
             "(they decide the batch order)",
             last.string(), state_.batch_size, state_.seed);
  model_ = build_model(spec_.config, spec_.num_classes, spec_.input, s_.seed);
  model_->to(s_.device);
  optimizer_ = make_optimizer(s_, lr_, model_->named_parameters());
  restore_checkpoint(checkpoint, *model_, optimizer_.get());
  collect_dropouts(*model_, dropouts_);
  CU3D_CHECK(state_.dropout_calls.size() == dropouts_.size(),
             "{}: {} dropout counters for {} dropout layers", last.string(),
             state_.dropout_calls.size(), dropouts_.size());
  for (size_t i = 0; i < dropouts_.size(); ++i)
    dropouts_[i]->set_calls(state_.dropout_calls[i]);
  last_good_ = last.string();
  fmt::print("resume: {} at epoch {}, batch {} (step {})\n", last.string(), state_.epoch + 1,
             state_.batch, state_.step);
}

// Copies every tensor of `path` whose name and shape match; only the classifier head (the
// model's last two parameters, weight and bias) may differ, e.g. for another class count.
void Run::init_from(const fs::path& path) {
  if (init_from_foreign_weights(path, spec_, *model_, s_.keras_order)) return;
  const Checkpoint checkpoint = read_checkpoint(path);
  std::map<std::string, const Tensor*> stored;
  for (const auto& [name, tensor] : checkpoint.tensors)
    stored[name] = &tensor;
  const NamedTensors params = model_->named_parameters();
  std::vector<std::string> fresh;
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, tensor] = params[i];
    const auto found = stored.find(name);
    const bool match = found != stored.end() && found->second->shape() == tensor.shape();
    if (match) {
      Tensor(tensor).copy_from(*found->second);
      continue;
    }
    CU3D_CHECK(i + 2 >= params.size(),
               "--init {}: tensor '{}' {} {}; only the last layer (the head) may differ",
               path.string(), name, shape_str(tensor.shape()),
               found == stored.end() ? "is missing"
                                     : "is " + shape_str(found->second->shape()) + " in the file");
    fresh.push_back(name);
  }
  fmt::print("init: {} tensors from {}{}\n", params.size() - fresh.size(), path.string(),
             fresh.empty() ? "" : fmt::format("; new head: {}", fmt::join(fresh, ", ")));
}

void Run::write_run_files() {
  fs::create_directories(s_.output);
  remove_stale_temporaries(s_.output);  // left by a killed run
  std::string classes;
  for (const std::string& c : data_.classes)
    classes += c + "\n";
  write_atomically(s_.output / "classes.txt", classes);
  const fs::path command = s_.output / "command.txt";
  write_atomically(command, read_text(command) + s_.command_line + "\n");
  const json config = {{"model", spec_.config},
                       {"input", spec_.input},
                       {"classes", data_.classes},
                       {"data", data_.description},
                       {"recipe", data::recipe_to_json(recipe_)},
                       {"optimizer", s_.optimizer},
                       {"lr", s_.lr},
                       {"momentum", s_.momentum},
                       {"weight_decay", s_.weight_decay},
                       {"schedule", s_.schedule},
                       {"warmup", s_.warmup},
                       {"epochs", s_.epochs},
                       {"batch", s_.batch},
                       {"workers", s_.workers},
                       {"seed", s_.seed},
                       {"compute", describe_compute(s_.device)}};
  write_atomically(s_.output / "config.json", config.dump(2) + "\n");
  const ModelSummary summary = summarize_model(spec_.config, spec_.num_classes, spec_.input);
  write_atomically(s_.output / "summary.txt",
                   format_summary(summary, {int64_t(s_.batch)}, fusion_enabled()));
  write_atomically(s_.output / "model.dot", model_dot(summary));
  render_dot(s_.output / "model.dot", s_.output / "model.png");
}

json Run::state_json() {
  state_.dropout_calls.clear();
  for (const Dropout* d : dropouts_)
    state_.dropout_calls.push_back(d->calls());
  return to_json(state_);
}

void Run::save(const fs::path& path) {
  if (!writer_) return;
  const std::map<std::string, std::string> metadata = {
      {kRecipeKey, data::recipe_to_json(recipe_).dump()},
      {kClassesKey, json(data_.classes).dump()},
      {kStateKey, state_json().dump()}};
  save_checkpoint(path, spec_, *model_, optimizer_.get(), metadata);
}

void Run::train_epoch(data::Loader& loader) {
  // Batches on the training device, the next one's copy overlapping this step (data/device_feeder).
  data::DeviceFeeder feeder(loader, recipe_, spec_.input, s_.device);
  feeder.start_epoch(state_.epoch);  // before batches_per_epoch(), which counts this epoch's
  const int64_t batches = loader.batches_per_epoch();
  const int64_t total_steps = int64_t(s_.epochs) * batches;
  const LrSchedule schedule = make_schedule(s_, lr_, total_steps);
  Progress progress(s_.progress_tty, state_.epoch, s_.epochs, batches, state_.batch);
  // A resumed epoch skips the batches it already trained on (the loader cuts them again: cheap
  // next to training, and it keeps the loader free of resume logic).
  for (int64_t b = 0; b < state_.batch; ++b)
    feeder.next();
  int64_t clips_this_run = 0;
  model_->train();
  if (events_) events_->start_epoch();
  while (auto fed = feeder.next()) {
    const data::Batch* batch = &fed->host;
    const Tensor& x = fed->input;
    const Tensor& labels = fed->labels;
    optimizer_->set_lr(schedule.at(state_.step));
    optimizer_->zero_grad();
    const StepOutput out = forward_backward(x, labels);
    const double loss = out.loss.item();
    optimizer_->step();
    ++state_.batch;
    ++state_.step;
    const StepTotals totals = reduce_step(comm_, loss, out.correct, batch->size, g_stop.load());
    if (totals.stop) g_stop.store(true);  // every rank stops at the same step
    state_.loss_sum += totals.loss_sum;
    state_.correct += totals.correct;
    state_.seen += totals.clips;
    clips_this_run += totals.clips;
    if (events_)
      events_->on_step(state_.step, totals.clips, totals.loss_sum / double(totals.clips),
                       totals.correct, optimizer_->lr());
    progress.update(state_.batch, state_.loss_sum / double(state_.seen),
                    double(state_.correct) / double(state_.seen), clips_this_run);
    if (s_.after_step) s_.after_step(state_.step);
    if (g_stop.load() && state_.batch < batches) {
      interrupted_ = true;
      break;
    }
  }
  progress.end();
}

// Forward, loss, backward and the optional clipping of one batch. A non-finite loss (or, with
// --check-numerics, the first non-finite layer output or gradient) stops the run naming the step
// and the last good checkpoint.
StepOutput Run::forward_backward(const Tensor& x, const Tensor& labels) {
  try {
    StepOutput out = forward_loss(*model_, x, labels, spec_.num_classes);
    const double loss = out.loss.item();
    if (!std::isfinite(loss)) throw NonFiniteError(fmt::format("the loss became {}", loss));
    autograd::backward(out.loss, Tensor(), reducer_ ? reducer_->hook() : autograd::GradReadyFn());
    if (reducer_) reducer_->finish();  // the averaged gradients, before clipping
    if (s_.clip_grad_norm > 0) clip_grad_norm(optimizer_->parameters(), s_.clip_grad_norm);
    return out;
  } catch (const NonFiniteError& e) {
    autograd::clear_tape();
    throw Error(fmt::format(
        "{} at epoch {}, batch {} (step {}); the last good checkpoint is {}. Lower --lr (now {}), "
        "try --clip-grad-norm, or check the data{}",
        e.what(), state_.epoch + 1, state_.batch + 1, state_.step + 1, last_good_, s_.lr,
        check_numerics() ? "" : " (--check-numerics names the first layer that went non-finite)"));
  }
}

void Run::end_epoch() {
  const EvalResult r = evaluate(*model_, *data_.test, recipe_, spec_.input, spec_.num_classes,
                                s_.batch, s_.workers, &comm_);
  History& h = state_.history;
  h.loss.push_back(state_.loss_sum / double(state_.seen));
  h.acc.push_back(double(state_.correct) / double(state_.seen));
  h.val_loss.push_back(r.loss);
  h.val_acc.push_back(r.clip_top1);
  const size_t classes = size_t(spec_.num_classes);
  fmt::print(
      "epoch {}/{}  loss {:.4f}  acc {:.4f}  val_loss {:.4f}  val_acc {:.4f}{}  video top-1 "
      "{:.4f}{} ({} videos)\n",
      state_.epoch + 1, s_.epochs, h.loss.back(), h.acc.back(), r.loss, r.clip_top1,
      top5_text(r.clip_top5, classes), r.video_top1, top5_text(r.video_top5, classes), r.videos);
  ++state_.epoch;
  state_.batch = 0;
  state_.loss_sum = 0;
  state_.correct = state_.seen = 0;
  const bool best = r.video_top1 > state_.best;
  if (best) state_.best = r.video_top1, state_.best_epoch = state_.epoch;

  std::string result = "epoch\tloss\tacc\tval_loss\tval_acc\n";
  for (size_t e = 0; e < h.loss.size(); ++e)
    result += fmt::format("{}\t{:.6f}\t{:.6f}\t{:.6f}\t{:.6f}\n", e + 1, h.loss[e], h.acc[e],
                          h.val_loss[e], h.val_acc[e]);
  if (!writer_) return;
  write_atomically(s_.output / "result.txt", result);
  write_curves_png(s_.output / "model_accuracy.png", "model accuracy", "accuracy",
                   {{"acc", h.acc}, {"val_acc", h.val_acc}});
  write_curves_png(s_.output / "model_loss.png", "model loss", "loss",
                   {{"loss", h.loss}, {"val_loss", h.val_loss}});
  write_confusion_png(s_.output / "confusion_matrix.png", r.confusion, data_.classes);
  if (events_)
    events_->on_epoch(state_.epoch, h.loss.back(), h.acc.back(), r, optimizer_->lr(),
                      s_.output / "confusion_matrix.png");
  save(last_checkpoint(s_.output));
  last_good_ = last_checkpoint(s_.output).string();
  if (best) save(best_checkpoint(s_.output));
}

TrainOutcome Run::run() {
  open_or_resume();
  broadcast_state(comm_, *model_, optimizer_.get());
  reducer_ = make_reducer(comm_, *model_, s_.dist);
  if (s_.dist.sync_bn) synchronize_batch_norm(*model_, comm_);
  decorrelate_dropout(*model_, comm_.rank());
  if (writer_) {
    write_run_files();
    events_ = std::make_unique<TrainingEvents>(s_.output);
  }
  const ModelSummary summary = summarize_model(spec_.config, spec_.num_classes, spec_.input);
  fmt::print("train: model {} ({} parameters, input {}), {} classes\n", summary.name,
             summary.parameters, shape_str(spec_.input), spec_.num_classes);
  fmt::print("train: data {}, recipe {}; {} train / {} test videos\n", data_.description,
             recipe_.name, data_.train->size(), data_.test->size());
  fmt::print("train: {} lr {} ({}), batch {}, {} epochs, seed {}; {}\n", s_.optimizer, lr_,
             s_.schedule, s_.batch, s_.epochs, s_.seed, describe_compute(s_.device));
  print_data_parallel(comm_, s_.batch, lr_, s_.dist, reducer_.get(), data_.train->size());
  std::fflush(stdout);
  data::Loader loader(*data_.train, recipe_,
                      {.batch_size = s_.batch,
                       .workers = s_.workers,
                       .seed = s_.seed,
                       .rank = comm_.rank(),
                       .world = comm_.size()});
  while (state_.epoch < s_.epochs) {
    train_epoch(loader);
    if (interrupted_) {
      save(last_checkpoint(s_.output));
      fmt::print(
          "train: interrupted at epoch {}, batch {}; saved {}; continue with the same command plus "
          "--resume\n",
          state_.epoch + 1, state_.batch, last_checkpoint(s_.output).string());
      return TrainOutcome::interrupted;
    }
    end_epoch();
    // A stop request that came during evaluation must stop every rank here, or none.
    if (any_rank(comm_, g_stop.load())) g_stop.store(true);
    if (g_stop.load() && state_.epoch < s_.epochs) {
      fmt::print(
          "train: interrupted after epoch {}; saved {}; continue with the same command plus "
          "--resume\n",
          state_.epoch, last_checkpoint(s_.output).string());
      return TrainOutcome::interrupted;
    }
  }
  if (const int64_t bad = data_.train->unreadable() + data_.test->unreadable(); bad > 0)
    fmt::print("train: {} unreadable video(s) skipped (warned above)\n", bad);
  fmt::print("train: done; best video top-1 {:.4f} at epoch {}; outputs in {}\n", state_.best,
             state_.best_epoch, s_.output.string());
  return TrainOutcome::finished;
}

}  // namespace

void check_plan_names(const TrainSettings& settings) {
  CU3D_CHECK(settings.optimizer == "adam" || settings.optimizer == "sgd",
             "--optimizer: unknown optimizer '{}': use adam or sgd", settings.optimizer);
  CU3D_CHECK(settings.schedule == "constant" || settings.schedule == "cosine" ||
                 settings.schedule == "step",
             "--schedule: unknown schedule '{}': use constant, cosine or step", settings.schedule);
}

TrainOutcome train(const TrainSettings& settings, TrainData& data) {
  g_stop.store(false);
  CU3D_CHECK(settings.epochs >= 1 && settings.batch >= 1 && settings.workers >= 1,
             "--epochs, --batch and --workers must be at least 1 (got {}, {}, {})", settings.epochs,
             settings.batch, settings.workers);
  CU3D_CHECK(std::isfinite(settings.lr) && settings.lr > 0, "--lr must be positive, got {}",
             settings.lr);
  check_plan_names(settings);
  CU3D_CHECK(settings.clip_grad_norm >= 0 && std::isfinite(settings.clip_grad_norm),
             "--clip-grad-norm must be a positive number (0: off), got {}",
             settings.clip_grad_norm);
  // The checking mode is process-wide (layers and the tape test it); restore it afterwards.
  struct NumericsScope {
    bool previous = check_numerics();
    ~NumericsScope() { set_check_numerics(previous); }
  } numerics_scope;
  set_check_numerics(settings.check_numerics);
  const std::unique_ptr<dist::Communicator> single =
      settings.comm == nullptr ? dist::make_local_communicator() : nullptr;
  dist::Communicator& comm = settings.comm != nullptr ? *settings.comm : *single;
  comm.set_timeout(settings.dist.timeout);
  const QuietUnlessRankZero quiet(comm);
  try {
    Run run(settings, data, comm);
    const TrainOutcome outcome = run.run();
    comm.barrier();  // rank 0's last checkpoint is written before any rank returns
    return outcome;
  } catch (const std::exception& e) {
    // One rank's error would leave the others waiting in a collective: stop them all now.
    if (comm.size() > 1) comm.abort(e.what());
    throw;
  }
}

void request_stop() {
  g_stop.store(true);
}
bool stop_requested() {
  return g_stop.load();
}

fs::path last_checkpoint(const fs::path& output) {
  return output / "checkpoint-last.safetensors";
}
fs::path best_checkpoint(const fs::path& output) {
  return output / "checkpoint-best.safetensors";
}

}  // namespace cu3d::apps
