// Crash-safe state (docs/ROBUSTNESS.md): checkpoints carry a checksum checked at load; `cu3d train`
// killed with SIGKILL at random moments, half of the time in the middle of a checkpoint write,
// always leaves a checkpoint that loads and a run that --resume continues; a full disk (a file-size
// limit) gives a clear error and leaves the previous checkpoint intact; `cu3d prep` killed at
// random moments resumes to shards byte-identical to an uninterrupted run, and a torn shard is
// redone, never read.
//
// The kill tests run the real binary as a child: 20 rounds for training, 8 for prep, or 6 and 4 in
// a sanitizer build (CI's second run, where every step is several times slower). The environment
// variable CU3D_KILL_ROUNDS sets both.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "apps/app.h"
#include "apps/model_io.h"
#include "apps/trainer.h"
#include "child_process.h"
#include "cpu/cli_testing.h"
#include "data/shard.h"
#include "engine/atomic_file.h"
#include "engine/optim/optimizer.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"

#if defined(__SANITIZE_ADDRESS__)
#define CU3D_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CU3D_TEST_SANITIZED 1
#endif
#endif

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;
using cu3d::testing::cu3d_binary;
using cu3d::testing::read_text;
using cu3d::testing::spawn;
using cu3d::testing::wait_for;
using Clock = std::chrono::steady_clock;

int kill_rounds(int full, int sanitized) {
  if (const char* rounds = std::getenv("CU3D_KILL_ROUNDS")) return std::max(1, std::atoi(rounds));
#ifdef CU3D_TEST_SANITIZED
  (void)full;
  return sanitized;
#else
  (void)sanitized;
  return full;
#endif
}

int quiet_cli(const std::vector<std::string>& args) {
  const Captured c = cli(args);
  if (c.status != 0) ADD_FAILURE() << "cu3d " << args.at(0) << " failed: " << c.err;
  return c.status;
}

// The files of a folder by name (temporaries left by killed writers excluded), with contents.
std::map<std::string, std::string> folder_contents(const fs::path& folder) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().string().find(".tmp") == std::string::npos)
      files[entry.path().filename().string()] = read_text(entry.path());
  return files;
}

// The training step a checkpoint holds (throws if it does not load: that is the test).
int64_t checkpoint_step(const fs::path& path) {
  const Checkpoint checkpoint = read_checkpoint(path);
  return nlohmann::json::parse(checkpoint.metadata.at(kStateKey)).at("step").get<int64_t>();
}

class CrashSafety : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("cu3d-test-crash-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ofstream(root_ / "tiny3d.json") << kTinyModel;
    quiet_cli({"synth", (root_ / "videos").string(), "--classes", "3", "--groups", "4", "--clips",
               "3", "--frames", "12", "--size", "32"});
    quiet_cli({"prep", (root_ / "videos").string(), (root_ / "shards").string(), "--depth", "4"});
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::vector<std::string> train_args(const fs::path& out, int epochs) {
    return {"train",
            "--model",
            (root_ / "tiny3d.json").string(),
            "--data",
            (root_ / "shards").string(),
            "--output",
            out.string(),
            "--epochs",
            std::to_string(epochs),
            "--batch",
            "4",
            "--workers",
            "1",
            "--lr",
            "0.01"};
  }

  // A model, Adam and a spec like the training runs', for the unit-level checkpoint tests.
  struct Saved {
    ModelSpec spec;
    std::shared_ptr<Module> model;
    std::unique_ptr<Adam> adam;
  };
  static Saved tiny_model() {
    Saved s;
    s.spec = {nlohmann::json::parse(kTinyModel), 3, {4, 32, 32, 1}};
    s.model = build_model(s.spec.config, s.spec.num_classes, s.spec.input, 5);
    s.adam = std::make_unique<Adam>(s.model->named_parameters(), AdamOptions{});
    return s;
  }

  static fs::path root_;
};
fs::path CrashSafety::root_;

TEST_F(CrashSafety, CheckpointChecksumDetectsAlteredTensorBytes) {
  const Saved s = tiny_model();
  const fs::path path = root_ / "checksum.safetensors";
  save_checkpoint(path, s.spec, *s.model, s.adam.get());
  EXPECT_NO_THROW(read_checkpoint(path));
  std::string bytes = read_text(path);
  bytes[bytes.size() - 5] ^= 0x10;  // one bit of the last tensor's data
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  try {
    read_checkpoint(path);
    FAIL() << "an altered checkpoint loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
}

TEST_F(CrashSafety, CheckpointWithoutChecksumFromAnotherToolStillLoads) {
  const Saved s = tiny_model();
  const fs::path path = root_ / "no-checksum.safetensors";
  save_checkpoint(path, s.spec, *s.model);
  SafetensorsContents contents = load_safetensors(path);
  ASSERT_EQ(contents.metadata.erase("cu3d.checksum"), 1u);
  save_safetensors(path, contents.tensors, contents.metadata);
  EXPECT_NO_THROW(load_model(path));
}

TEST_F(CrashSafety, StaleTemporariesOfKilledWritersAreRemovedLiveOnesKept) {
  const fs::path dir = root_ / "temporaries";
  fs::create_directories(dir);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  wait_for(dead);  // reaped: no process has this id now
  const fs::path stale = dir / ("checkpoint-last.safetensors.tmp" + std::to_string(dead));
  const fs::path live = dir / ("result.txt.tmp" + std::to_string(::getpid()));
  for (const fs::path& p : {stale, live, dir / "notes.tmp", dir / "shard-00000.bin.tmp"})
    std::ofstream(p) << "x";
  EXPECT_EQ(remove_stale_temporaries(dir), 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(dir / "notes.tmp"));
}

// RLIMIT_FSIZE stands in for a full disk: with SIGXFSZ ignored, a write past the limit fails with
// EFBIG as one past the end of the disk fails with ENOSPC. Restored at scope exit.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) : previous_signal_(std::signal(SIGXFSZ, SIG_IGN)) {
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    const rlimit limit{bytes, previous_.rlim_max};
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &previous_);
    std::signal(SIGXFSZ, previous_signal_);
  }

 private:
  rlimit previous_{};
  void (*previous_signal_)(int);
};

TEST_F(CrashSafety, FullDiskGivesClearErrorAndKeepsThePreviousCheckpoint) {
  Saved s = tiny_model();
  const fs::path dir = root_ / "full-disk";
  fs::create_directories(dir);
  const fs::path path = dir / "checkpoint-last.safetensors";
  save_checkpoint(path, s.spec, *s.model, s.adam.get());
  const std::string before = read_text(path);
  s.model = build_model(s.spec.config, s.spec.num_classes, s.spec.input, 6);  // other weights
  {
    const FileSizeLimit limit(before.size() / 2);
    try {
      save_checkpoint(path, s.spec, *s.model, s.adam.get());
      ADD_FAILURE() << "a write past the file-size limit succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("the disk is full"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(read_text(path), before);
  EXPECT_NO_THROW(read_checkpoint(path));
  EXPECT_EQ(folder_contents(dir).size(), 1u);
  for (const auto& entry : fs::directory_iterator(dir))  // no temporary left behind
    EXPECT_EQ(entry.path(), path);
}

TEST_F(CrashSafety, FullDiskDuringTrainingExitsWithOneLineAndResumesAfterwards) {
  const fs::path run = root_ / "full-disk-train";
  ASSERT_EQ(quiet_cli(train_args(run, 1)), 0);
  const fs::path last = last_checkpoint(run);
  const std::string before = read_text(last);
  std::vector<std::string> more = train_args(run, 2);
  more.push_back("--resume");
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int status = 0;
  {
    const FileSizeLimit limit(before.size() / 2);
    status = run_cli(more);
  }
  ::testing::internal::GetCapturedStdout();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(status, 0);
  EXPECT_NE(err.find("the disk is full"), std::string::npos) << err;
  EXPECT_NE(err.find(run.string()), std::string::npos) << err;
  EXPECT_EQ(read_text(last), before);
  EXPECT_EQ(quiet_cli(more), 0);  // space again: the run continues
  EXPECT_EQ(nlohmann::json::parse(read_checkpoint(last).metadata.at(kStateKey)).at("epoch"), 2);
}

// True once `path` exists, polling every millisecond for up to `seconds`.
bool appears(const fs::path& path, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST_F(CrashSafety, TrainKilledAtRandomMomentsAlwaysLeavesACheckpointThatResumes) {
  const fs::path binary = cu3d_binary();
  if (binary.empty()) GTEST_SKIP() << "no cu3d binary beside the test binary";
  const fs::path run = root_ / "killed-train", log = root_ / "killed-train.log";
  const fs::path last = last_checkpoint(run);
  const int rounds = kill_rounds(20, 6);
  std::mt19937 gen(::testing::UnitTest::GetInstance()->random_seed());
  // Commits wait 30 ms between the finished temporary and the rename. Round 0 measures how long a
  // run takes to its first checkpoint (start-up, run files, one epoch) and kills a random moment
  // after it; odd rounds kill at a random moment within twice that (start-up, steps, evaluation,
  // writes); even rounds kill inside a checkpoint commit, once its temporary exists.
  const auto start = Clock::now();
  const pid_t first = spawn(binary, train_args(run, 1000), {"CU3D_TEST_SLOW_COMMIT_MS=30"}, log);
  ASSERT_TRUE(appears(last, 120.0)) << read_text(log);
  const double to_checkpoint = std::chrono::duration<double>(Clock::now() - start).count();
  std::uniform_real_distribution<double> delay(0, 2 * to_checkpoint);
  std::this_thread::sleep_for(std::chrono::duration<double>(delay(gen) / 2));
  ::kill(first, SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(wait_for(first))) << read_text(log);
  int64_t step = checkpoint_step(last);
  int during_write = 0;
  for (int round = 1; round < rounds; ++round) {
    std::vector<std::string> args = train_args(run, 1000);
    args.push_back("--resume");
    const pid_t pid = spawn(binary, args, {"CU3D_TEST_SLOW_COMMIT_MS=30"}, log);
    const bool in_write =
        round % 2 == 0 && appears(last.string() + ".tmp" + std::to_string(pid), 60.0);
    during_write += in_write;
    if (!in_write) std::this_thread::sleep_for(std::chrono::duration<double>(delay(gen)));
    ::kill(pid, SIGKILL);
    const int status = wait_for(pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the run ended by itself:\n"
                                     << read_text(log);
    int64_t now = -1;
    ASSERT_NO_THROW(now = checkpoint_step(last)) << "round " << round;
    EXPECT_GE(now, step) << "round " << round << ": the checkpoint went back in time";
    step = now;
  }
  EXPECT_EQ(during_write, (rounds - 1) / 2);
  // --resume continues: one more epoch than the checkpoint holds finishes normally.
  const int epoch =
      nlohmann::json::parse(read_checkpoint(last).metadata.at(kStateKey)).at("epoch").get<int>();
  std::vector<std::string> finish = train_args(run, epoch + 1);
  finish.push_back("--resume");
  const pid_t pid = spawn(binary, finish, {}, log);
  const int status = wait_for(pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(log);
  EXPECT_GT(checkpoint_step(last), step);
  for (const auto& entry : fs::directory_iterator(run))  // the killed runs' temporaries are gone
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST_F(CrashSafety, PrepKilledAtRandomMomentsResumesToIdenticalShards) {
  const fs::path binary = cu3d_binary();
  if (binary.empty()) GTEST_SKIP() << "no cu3d binary beside the test binary";
  const std::vector<std::string> base = {
      "prep", (root_ / "videos").string(), "",  "--depth", "4",      "--threads",
      "1",    "--videos-per-shard",        "2", "--mean",  "dataset"};
  auto prep_args = [&](const fs::path& out) {
    std::vector<std::string> args = base;
    args[2] = out.string();
    return args;
  };
  const fs::path log = root_ / "killed-prep.log";
  const auto start = Clock::now();
  ASSERT_EQ(wait_for(spawn(binary, prep_args(root_ / "prep-reference"), {}, log)), 0)
      << read_text(log);
  const int full_ms = int(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  const auto reference = folder_contents(root_ / "prep-reference");

  const fs::path out = root_ / "prep-killed";
  std::mt19937 gen(::testing::UnitTest::GetInstance()->random_seed());
  std::uniform_int_distribution<int> delay_ms(0, std::max(1, full_ms));
  for (int round = 0, rounds = kill_rounds(8, 4); round < rounds; ++round) {
    const pid_t pid = spawn(binary, prep_args(out), {}, log);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(gen)));
    ::kill(pid, SIGKILL);
    const int status = wait_for(pid);
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        << read_text(log);
  }
  ASSERT_EQ(wait_for(spawn(binary, prep_args(out), {}, log)), 0) << read_text(log);
  EXPECT_EQ(folder_contents(out), reference);
}

TEST_F(CrashSafety, TornShardIsNeverReadAndIsRedoneByTheNextPrep) {
  const fs::path out = root_ / "prep-torn";
  const std::vector<std::string> args = {
      "prep", (root_ / "videos").string(), out.string(), "--depth", "4", "--videos-per-shard", "4"};
  ASSERT_EQ(quiet_cli(args), 0);
  const auto complete = folder_contents(out);
  const fs::path bin = out / "shard-00001.bin";
  ASSERT_TRUE(fs::exists(bin));
  fs::resize_file(bin, fs::file_size(bin) / 2);  // what a writer without the rename could leave
  try {
    data::ShardSet shards(out);
    FAIL() << "a torn shard was opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-00001"), std::string::npos) << e.what();
  }
  ASSERT_EQ(quiet_cli(args), 0);
  EXPECT_EQ(folder_contents(out), complete);
}

}  // namespace
}  // namespace cu3d::apps
