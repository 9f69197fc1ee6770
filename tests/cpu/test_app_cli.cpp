// The cu3d command line end to end on a tiny generated dataset (seconds on a CPU): synth -> prep
// -> train -> eval -> predict -> summary with valid outputs, --resume after interruptions ending
// with exactly the weights of an uninterrupted run, and bad arguments or missing files failing
// with a one-line reason.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "apps/app.h"
#include "apps/model_io.h"
#include "apps/trainer.h"
#include "cpu/checkpoint_expectations.h"
#include "cpu/cli_testing.h"
#include "data/shard.h"
#include "data/video.h"
#include "engine/compute.h"
#include "engine/device.h"
#include "engine/safetensors.h"
#include "layers/models.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

// One dataset and shard folder for the whole suite: 3 classes x 3 groups x 2 clips of 12 frames.
class AppCli : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("cu3d-test-app-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ofstream(root_ / "tiny3d.json") << kTinyModel;
    const Captured synth = cli({"synth", (root_ / "videos").string(), "--classes", "3", "--groups",
                                "3", "--clips", "2", "--frames", "12", "--size", "32"});
    ASSERT_EQ(synth.status, 0) << synth.err;
    const Captured prep = cli({"prep", (root_ / "videos").string(), (root_ / "shards").string(),
                               "--depth", "4", "--mean", "dataset"});
    ASSERT_EQ(prep.status, 0) << prep.err;
    ASSERT_NE(prep.out.find("3 classes"), std::string::npos) << prep.out;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::vector<std::string> train_args(const fs::path& output, int epochs) {
    return {"train",
            "--model",
            (root_ / "tiny3d.json").string(),
            "--data",
            (root_ / "shards").string(),
            "--epochs",
            std::to_string(epochs),
            "--batch",
            "4",
            "--lr",
            "0.01",
            "--output",
            output.string()};
  }

  static fs::path root_;
};

fs::path AppCli::root_;

void expect_png(const fs::path& path) {
  const cv::Mat image = cv::imread(path.string());
  EXPECT_FALSE(image.empty()) << path << " is not a readable PNG";
}

TEST_F(AppCli, TrainEvalPredictSummaryWriteValidOutputs) {
  const fs::path run = root_ / "run";
  const Captured train = cli(train_args(run, 2));
  ASSERT_EQ(train.status, 0) << train.err;
  for (const char* name : {"classes.txt", "command.txt", "config.json", "summary.txt", "model.dot",
                           "checkpoint-best.safetensors"})
    EXPECT_TRUE(fs::exists(run / name)) << name;
  for (const char* name : {"model_accuracy.png", "model_loss.png", "confusion_matrix.png"})
    expect_png(run / name);
  EXPECT_EQ(read_file(run / "classes.txt"), "MoveLeft\nMoveRight\nMoveUp\n");
  const std::string result = read_file(run / "result.txt");
  EXPECT_EQ(result.substr(0, result.find('\n')), "epoch\tloss\tacc\tval_loss\tval_acc");
  EXPECT_EQ(std::count(result.begin(), result.end(), '\n'), 3) << result;
  EXPECT_NE(read_file(run / "command.txt").find("--epochs 2"), std::string::npos);
  // On the CPU the GPU's kernel options do not apply, and the run does not claim them.
  const nlohmann::json config = nlohmann::json::parse(read_file(run / "config.json"));
  EXPECT_EQ(config["compute"], "fp32 on the cpu, fusion on");
  EXPECT_EQ(train.out.find("conv backend"), std::string::npos) << train.out;

  const TrainedModel model = load_trained_model(run / "checkpoint-last.safetensors");
  EXPECT_EQ(model.classes.size(), 3u);
  ASSERT_EQ(model.recipe.mean.size(), 1u);  // --mean dataset: the training frames' gray mean
  EXPECT_GT(model.recipe.mean[0], 0.f);
  EXPECT_EQ(model.spec.input, (Shape{4, 32, 32, 1}));

  const Captured eval =
      cli({"eval", (run / "checkpoint-last.safetensors").string(), "--data",
           (root_ / "shards").string(), "--confusion", (root_ / "eval.png").string(), "--device",
           "cpu", "--precision", "bf16"});
  compute_options().precision = Precision::fp32;  // the flags set the process-wide options
  ASSERT_EQ(eval.status, 0) << eval.err;
  EXPECT_NE(eval.out.find("eval: --precision bf16 applies to CUDA ops; the CPU computes in fp32"),
            std::string::npos)
      << eval.out;
  EXPECT_NE(eval.out.find("video accuracy top-1"), std::string::npos) << eval.out;
  EXPECT_NE(eval.out.find("MoveUp"), std::string::npos) << eval.out;
  // Three classes are always in the top 5: no top-5 figure, in eval or in training's lines.
  EXPECT_EQ(eval.out.find("top-5"), std::string::npos) << eval.out;
  EXPECT_EQ(train.out.find("top-5"), std::string::npos) << train.out;
  EXPECT_EQ(top5_text(0.25, 3), "");
  EXPECT_EQ(top5_text(0.8125, 101), "  top-5 0.8125");
  expect_png(root_ / "eval.png");

  const fs::path video = root_ / "videos" / "MoveUp" / "v_MoveUp_g01_c01.avi";
  const Captured predict =
      cli({"predict", (run / "checkpoint-last.safetensors").string(), video.string(), "--json"});
  ASSERT_EQ(predict.status, 0) << predict.err;
  const nlohmann::json json = nlohmann::json::parse(predict.out);
  ASSERT_EQ(json.size(), 1u);
  const nlohmann::json& top = json[0]["top"];
  ASSERT_EQ(top.size(), 3u);  // --top 5 is capped by the class count
  double total = 0;
  for (const auto& entry : top)
    total += entry["probability"].get<double>();
  EXPECT_NEAR(total, 1.0, 1e-4);

  const fs::path annotated = root_ / "annotated.avi";
  const Captured annotate = cli({"predict", (run / "checkpoint-last.safetensors").string(),
                                 video.string(), "--annotate", annotated.string()});
  ASSERT_EQ(annotate.status, 0) << annotate.err;
  EXPECT_EQ(data::decode_video(annotated, {}).frames, 12);

  const Captured summary = cli({"summary", "--model", "keras3d", "--nclass", "8"});
  ASSERT_EQ(summary.status, 0) << summary.err;
  EXPECT_NE(summary.out.find("conv1a"), std::string::npos) << summary.out;
}

// Training stopped twice mid-epoch (as Ctrl-C stops it) and resumed, the last time through the
// command line, ends with exactly the tensors (weights and Adam state) of one uninterrupted run.
TEST_F(AppCli, ResumeAfterInterruptionsEqualsUninterruptedRun) {
  const fs::path whole = root_ / "whole", pieces = root_ / "pieces";
  ASSERT_EQ(cli(train_args(whole, 3)).status, 0);

  const data::ShardSet shards(root_ / "shards");
  auto interrupted_run = [&](int64_t stop_at_step, bool resume) {
    TrainData data;
    data.train = std::make_unique<data::ShardSource>(shards, data::Side::train);
    data.test = std::make_unique<data::ShardSource>(shards, data::Side::test);
    data.recipe = shards.recipe();
    data.classes = shards.classes();
    TrainSettings s;
    s.model = load_model_config((root_ / "tiny3d.json").string());
    s.epochs = 3;
    s.batch = 4;
    s.lr = 0.01;
    s.output = pieces;
    s.resume = resume;
    s.after_step = [stop_at_step](int64_t step) {
      if (step == stop_at_step) request_stop();
    };
    testing::internal::CaptureStdout();
    const TrainOutcome outcome = train(s, data);
    testing::internal::GetCapturedStdout();
    return outcome;
  };
  // 12 training videos in batches of 4: steps 1-3 are epoch 1, 7-9 epoch 3.
  ASSERT_EQ(interrupted_run(2, false), TrainOutcome::interrupted);
  ASSERT_EQ(interrupted_run(8, true), TrainOutcome::interrupted);
  std::vector<std::string> resume = train_args(pieces, 3);
  resume.push_back("--resume");
  const Captured last = cli(resume);
  ASSERT_EQ(last.status, 0) << last.err;
  EXPECT_NE(last.out.find("resume:"), std::string::npos) << last.out;

  expect_same_checkpoints(whole / "checkpoint-last.safetensors",
                          pieces / "checkpoint-last.safetensors");
  EXPECT_EQ(read_file(whole / "result.txt"), read_file(pieces / "result.txt"));
}

// --no-fuse runs conv, ReLU and max-pool as separate ops; on the CPU the fused blocks run the same
// kernels in the same order, so both runs end with the same tensors. The memory estimates name
// the mode.
TEST_F(AppCli, NoFuseTrainsToTheSameCheckpoint) {
  const fs::path fused = root_ / "fused", separate = root_ / "separate";
  const Captured with = cli(train_args(fused, 2));
  ASSERT_EQ(with.status, 0) << with.err;
  EXPECT_NE(with.out.find("fusion on"), std::string::npos) << with.out;
  // --precision only changes CUDA ops: on the CPU it is noted and the weights stay the same.
  std::vector<std::string> args = train_args(separate, 2);
  args.insert(args.end(), {"--no-fuse", "--precision", "bf16"});
  const Captured without = cli(args);
  ASSERT_EQ(without.status, 0) << without.err;
  EXPECT_NE(without.out.find("fusion off"), std::string::npos) << without.out;
  EXPECT_NE(without.out.find("--precision bf16 applies to CUDA ops; the CPU computes in fp32"),
            std::string::npos)
      << without.out;
  expect_same_checkpoints(fused / "checkpoint-last.safetensors",
                          separate / "checkpoint-last.safetensors");
  EXPECT_EQ(read_file(fused / "result.txt"), read_file(separate / "result.txt"));
  // Each run's summary estimates the memory of the mode it ran in, and so does `cu3d summary`.
  EXPECT_NE(read_file(fused / "summary.txt").find("fusion on"), std::string::npos);
  EXPECT_NE(read_file(separate / "summary.txt").find("fusion off"), std::string::npos);
  const Captured summary = cli({"summary", "--model", "keras3d", "--no-fuse"});
  EXPECT_NE(summary.out.find("fusion off (--no-fuse"), std::string::npos) << summary.out;
  const Captured eval = cli({"eval", (separate / "checkpoint-last.safetensors").string(), "--data",
                             (root_ / "shards").string(), "--no-fuse", "--confusion",
                             (root_ / "eval-no-fuse.png").string()});
  EXPECT_EQ(eval.status, 0) << eval.err;
  compute_options().fuse = true;  // the flags set the process-wide options
  compute_options().precision = Precision::fp32;
}

// Training straight from the video folder (no prep) as an ensemble of two: the Keras tool's
// spellings, the ensemble's averaged probabilities in predict, and its checkpoint round trip.
TEST_F(AppCli, EnsembleTrainsFromVideoFolderWithKerasSpellings) {
  const fs::path run = root_ / "ensemble";
  const Captured train =
      cli({"train", "--model", (root_ / "tiny3d.json").string(), "--videos",
           (root_ / "videos").string(), "--epoch", "1", "--depth", "4", "--skip=false", "--nclass",
           "3", "--batch", "4", "--ensemble", "2", "--output", run.string()});
  ASSERT_EQ(train.status, 0) << train.err;
  const TrainedModel model = load_trained_model(run / "checkpoint-last.safetensors");
  EXPECT_EQ(model.spec.config.value("ensemble", 1), 2);
  EXPECT_EQ(model.recipe.sampling, data::Sampling::first);
  const fs::path video = root_ / "videos" / "MoveLeft" / "v_MoveLeft_g01_c01.avi";
  const Captured predict =
      cli({"predict", (run / "checkpoint-last.safetensors").string(), video.string(), "--json"});
  ASSERT_EQ(predict.status, 0) << predict.err;
  const nlohmann::json json = nlohmann::json::parse(predict.out);
  double total = 0;
  for (const auto& entry : json[0]["top"])
    total += entry["probability"].get<double>();
  EXPECT_NEAR(total, 1.0, 1e-4);
}

// --init copies every matching tensor and starts a new head when the class count differs.
TEST_F(AppCli, InitFromCheckpointWithAnotherClassCountKeepsTheBodyAndReplacesTheHead) {
  const fs::path source = root_ / "init-source", target = root_ / "init-target";
  ASSERT_EQ(cli(train_args(source, 1)).status, 0);
  const fs::path two = root_ / "shards-2";
  ASSERT_EQ(
      cli({"prep", (root_ / "videos").string(), two.string(), "--depth", "4", "--nclass", "2"})
          .status,
      0);
  std::vector<std::string> args = train_args(target, 1);
  args[4] = two.string();          // --data
  args[args.size() - 3] = "1e-9";  // --lr
  args.insert(args.end(), {"--init", (source / "checkpoint-last.safetensors").string()});
  const Captured c = cli(args);
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("new head: fc.weight, fc.bias"), std::string::npos) << c.out;
  // A learning rate of 1e-9 leaves the copied body as it was.
  const SafetensorsContents a = load_safetensors(source / "checkpoint-last.safetensors");
  const SafetensorsContents b = load_safetensors(target / "checkpoint-last.safetensors");
  ASSERT_EQ(a.tensors[0].first, "conv1.weight");
  ASSERT_EQ(b.tensors[0].first, "conv1.weight");
  const std::vector<float> x = a.tensors[0].second.to_vector<float>();
  const std::vector<float> y = b.tensors[0].second.to_vector<float>();
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(x[i], y[i], 1e-6) << i;

  // Without a matching body, --init is an error naming the tensor.
  std::vector<std::string> bad = train_args(root_ / "init-bad", 1);
  bad[2] = "keras3d";
  bad.insert(bad.end(), {"--init", (source / "checkpoint-last.safetensors").string()});
  EXPECT_NE(cli(bad).status, 0);
}

// A failing command prints exactly one line, "cu3d: error: ...", that names the culprit.
void expect_one_line_error(const Captured& c, const std::string& mentions) {
  EXPECT_NE(c.status, 0);
  EXPECT_EQ(c.err.rfind("cu3d: error: ", 0), 0u) << c.err;
  EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << c.err;
  EXPECT_NE(c.err.find(mentions), std::string::npos) << c.err;
}

TEST_F(AppCli, BadArgumentsAndMissingFilesFailWithOneLineReason) {
  const std::string shards = (root_ / "shards").string();
  const fs::path out = root_ / "bad";
  expect_one_line_error(
      cli({"train", "--data", (root_ / "nowhere").string(), "--output", out.string()}), "nowhere");
  expect_one_line_error(
      cli({"train", "--model", "no-such-model", "--data", shards, "--output", out.string()}),
      "no-such-model");
  expect_one_line_error(
      cli({"train", "--data", shards, "--output", out.string(), "--device", "cuda"}), "--device");
  expect_one_line_error(cli({"train", "--model", (root_ / "tiny3d.json").string(), "--data", shards,
                             "--output", out.string(), "--resume"}),
                        "--resume");
  expect_one_line_error(cli({"train", "--model", (root_ / "tiny3d.json").string(), "--data", shards,
                             "--output", out.string(), "--color"}),
                        "--color");
  const fs::path finished = root_ / "finished";
  ASSERT_EQ(cli(train_args(finished, 1)).status, 0);
  std::vector<std::string> other_batch = train_args(finished, 2);
  other_batch[8] = "2";  // --batch
  other_batch.push_back("--resume");
  expect_one_line_error(cli(other_batch), "--batch 2 differs from the run's 4");
  expect_one_line_error(cli(train_args(finished, 2)), "--resume");  // would overwrite the run
  // eval and predict run the model on --device: an unknown one, or CUDA without a GPU, is refused
  // naming the flag and what to do.
  const std::string last = (finished / "checkpoint-last.safetensors").string();
  expect_one_line_error(cli({"predict", last, "x.avi", "--device", "tpu"}), "--device");
  expect_one_line_error(cli({"eval", last, "--data", shards, "--precision", "fp64"}),
                        "--precision: unknown precision 'fp64'");
  if (!cuda_available())
    expect_one_line_error(cli({"eval", last, "--data", shards, "--device", "cuda"}),
                          "evaluate on the CPU with --device cpu");
  expect_one_line_error(cli({"eval", (root_ / "missing.safetensors").string(), "--data", shards}),
                        "missing");
  expect_one_line_error(cli({"predict", (root_ / "missing.safetensors").string(), "x.avi"}),
                        "missing");
  expect_one_line_error(cli({"prep", (root_ / "nowhere").string(), out.string()}), "nowhere");
  expect_one_line_error(cli({"synth", out.string(), "--classes", "99"}), "classes");
  expect_one_line_error(
      cli({"prep", (root_ / "videos").string(), out.string(), "--recipe", "c3d", "--color"}),
      "--color");
  // Parse errors (CLI11) also exit non-zero, in the same one-line form, naming the help to read.
  expect_one_line_error(cli({"train", "--data", shards}), "(see cu3d train --help)");
  expect_one_line_error(cli({"train", "--batch", "many"}), "--batch");
  expect_one_line_error(cli({"no-such-command"}), "(see cu3d --help)");
  expect_one_line_error(cli({"prep", "a", "b", "--mean", "median"}), "(see cu3d prep --help)");
  expect_one_line_error(cli({"prep", "a", "b", "--split", "4"}), "--split");
  expect_one_line_error(
      cli({"train", "--data", shards, "--output", out.string(), "--skip", "False"}),
      "use --skip=false or --no-skip");
  // Values train cannot use name their flag, before anything is created.
  expect_one_line_error(
      cli({"train", "--data", shards, "--output", out.string(), "--precision", "fp64"}),
      "--precision: unknown precision 'fp64'");
  expect_one_line_error(
      cli({"train", "--data", shards, "--output", out.string(), "--schedule", "linear"}),
      "--schedule");
  EXPECT_FALSE(fs::exists(out));
  expect_one_line_error(cli({"summary", "--batch", "0"}), "--batch");
  // A run folder where a checkpoint file belongs names the checkpoint to pass.
  const std::string best = (finished / "checkpoint-best.safetensors").string();
  expect_one_line_error(cli({"eval", finished.string(), "--data", shards}), "pass " + best);
  expect_one_line_error(cli({"export", finished.string()}), "pass " + best);
}

TEST_F(AppCli, ResumeContinuesTheSavedPlan) {
  const fs::path run = root_ / "plan";
  std::vector<std::string> first = train_args(run, 1);
  first.insert(first.end(), {"--schedule", "cosine", "--optimizer", "sgd"});
  ASSERT_EQ(cli(first).status, 0);
  // Left out, the plan's flags are the run's (the defaults would be batch 16, adam, 10 epochs).
  const std::vector<std::string> bare = {"train",
                                         "--model",
                                         (root_ / "tiny3d.json").string(),
                                         "--data",
                                         (root_ / "shards").string(),
                                         "--output",
                                         run.string(),
                                         "--resume"};
  const Captured resumed = cli(bare);
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("train: sgd lr 0.01 (cosine), batch 4, 1 epochs"), std::string::npos)
      << resumed.out;
  // Given differently, each is refused naming the flag and both values.
  auto with = [&](const std::string& flag, const std::string& value) {
    std::vector<std::string> args = bare;
    args.insert(args.end(), {flag, value});
    return cli(args);
  };
  expect_one_line_error(with("--epochs", "5"),
                        "--epochs 5 differs from the run's 1: resume with the run's flags, or "
                        "start a new --output");
  expect_one_line_error(with("--optimizer", "adam"), "--optimizer adam differs from the run's sgd");
  expect_one_line_error(with("--lr", "0.02"), "--lr 0.02 differs from the run's 0.01");
  expect_one_line_error(with("--schedule", "step"), "--schedule step differs");
  expect_one_line_error(with("--momentum", "0.5"), "--momentum 0.5 differs");
  expect_one_line_error(with("--warmup", "3"), "--warmup 3 differs");
  expect_one_line_error(with("--weight-decay", "0.1"), "--weight-decay 0.1 differs");
  expect_one_line_error(with("--seed", "7"), "--seed 7 differs");
  EXPECT_EQ(with("--lr", "0.01").status, 0);  // the same value is fine
}

// cu3d prep fixed the split and the mean of its shards: train and eval refuse to ignore them.
TEST_F(AppCli, ShardsRefuseFlagsFixedAtPrep) {
  const std::string shards = (root_ / "shards").string();
  const fs::path out = root_ / "fixed";
  auto train_with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"train",     "--model", (root_ / "tiny3d.json").string(),
                                     "--data",    shards,    "--output",
                                     out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli(args);
  };
  expect_one_line_error(
      train_with({"--mean", "none"}),
      "--mean was fixed by cu3d prep for the shards in " + shards + "; re-run prep to change it");
  expect_one_line_error(train_with({"--layout", "flat"}), "--layout was fixed by cu3d prep");
  expect_one_line_error(train_with({"--test-fraction", "0.5"}), "--test-fraction was fixed");
  expect_one_line_error(train_with({"--clip-level-split"}), "--clip-level-split was fixed");
  expect_one_line_error(train_with({"--split-seed", "3"}), "--split-seed was fixed");
  expect_one_line_error(train_with({"--split", "2"}), "--split was fixed");
  EXPECT_FALSE(fs::exists(out));

  const fs::path run = root_ / "fixed-run";
  ASSERT_EQ(cli(train_args(run, 1)).status, 0);
  const std::string checkpoint = (run / "checkpoint-last.safetensors").string();
  expect_one_line_error(cli({"eval", checkpoint, "--data", shards, "--split", "2"}),
                        "--split was fixed by cu3d prep");
  expect_one_line_error(cli({"eval", checkpoint, "--data", shards, "--nclass", "2"}),
                        "--nclass was fixed by cu3d prep");
}

TEST_F(AppCli, PrepSuggestsTheModelOfItsRecipe) {
  const Captured prep = cli({"prep", (root_ / "videos").string(), (root_ / "c3d-shards").string(),
                             "--recipe", "c3d", "--mean", "none"});
  ASSERT_EQ(prep.status, 0) << prep.err;
  EXPECT_NE(prep.out.find("--model c3d --output"), std::string::npos) << prep.out;
}

TEST_F(AppCli, VersionAndBareCommandList) {
  const Captured version = cli({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("cu3d ", 0), 0u) << version.out;
  // What the build and machine have, for bug reports: the CPU's BLAS kernels, and the CUDA
  // versions with device 0 or why there is none.
  EXPECT_NE(version.out.find("\ncpu: "), std::string::npos) << version.out;
  EXPECT_NE(version.out.find(" OpenBLAS "), std::string::npos) << version.out;
  EXPECT_NE(version.out.find("\ncuda: "), std::string::npos) << version.out;
  const Captured bare = cli({});
  EXPECT_NE(bare.out.find("Subcommands:"), std::string::npos) << bare.out;
  EXPECT_NE(bare.out.find("train"), std::string::npos) << bare.out;
  const Captured summary = cli({"summary", "--help"});
  EXPECT_NE(summary.out.find("--input D H W [C] "), std::string::npos) << summary.out;
}

TEST_F(AppCli, NonFiniteLossStopsNamingStepAndCheckpoint) {
  const fs::path run = root_ / "diverged";
  std::vector<std::string> args = train_args(run, 1);
  args[args.size() - 3] = "1e30";  // --lr: the first Adam step throws the weights to ~1e30
  const Captured c = cli(args);
  expect_one_line_error(c, "the loss became");
  EXPECT_NE(c.err.find("step"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("last good checkpoint"), std::string::npos) << c.err;
}

}  // namespace
}  // namespace cu3d::apps
