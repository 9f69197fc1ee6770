// `cu3d toy`: trains a small 3D CNN (two conv3d + pool + dense) on generated clips whose label
// is a direction of motion, prints progress and accuracy, and saves the weights as safetensors.
// It exercises the whole engine (ops, tape, Adam, checkpoints) in seconds on a CPU.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "apps/subcommands.h"
#include "data/toy_motion.h"
#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/safetensors.h"
#include "layers/toy_cnn.h"

namespace cu3d::apps {
namespace {

struct ToyOptions {
  int steps = 300;
  int batch = 32;
  int frames = 8;
  int size = 16;
  double lr = 3e-3;
  uint64_t seed = 1;
  std::string output = "toy-out";
};

void run_toy(const ToyOptions& o) {
  CU3D_CHECK(o.frames >= 4 && o.frames % 2 == 0 && o.size >= 8 && o.size % 4 == 0,
             "toy: --frames must be even and >= 4, --size a multiple of 4 and >= 8 (got {} and {})",
             o.frames, o.size);
  Generator gen(o.seed);
  auto net = toy_3d_cnn(o.frames, o.size, toy::kDirections, gen);
  std::printf("toy: %lld parameters; clips %dx%dx%dx1, 4 motion directions, batch %d, Adam %g\n",
              (long long)net->parameter_count(), o.frames, o.size, o.size, o.batch, o.lr);
  Adam adam(net->named_parameters(), AdamOptions{.lr = o.lr});
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= o.steps; ++step) {
    const toy::MotionBatch batch = toy::make_motion_batch(o.batch, o.frames, o.size, gen);
    adam.zero_grad();
    const Tensor loss = softmax_cross_entropy((*net)(batch.clips), batch.labels);
    CU3D_CHECK(std::isfinite(loss.item()), "toy: loss became {} at step {}; lower --lr",
               loss.item(), step);
    autograd::backward(loss);
    adam.step();
    if (step % 25 == 0 || step == o.steps) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("  step %4d/%d  loss %.4f  %.0f clips/s\n", step, o.steps, loss.item(),
                  step * o.batch / seconds);
      std::fflush(stdout);
    }
  }
  const toy::MotionBatch test = toy::make_motion_batch(512, o.frames, o.size, gen);
  std::printf("toy: accuracy on 512 unseen clips: %.1f%% (chance 25%%)\n",
              100 * top1_accuracy(*net, test.clips, test.labels));
  std::filesystem::create_directories(o.output);
  const std::filesystem::path weights = std::filesystem::path(o.output) / "toy.safetensors";
  save_safetensors(weights, net->named_parameters(), {{"model", "toy-3dcnn"}});
  std::printf("toy: weights written to %s\n", weights.c_str());
}

}  // namespace

void add_toy_command(CLI::App& app) {
  auto options = std::make_shared<ToyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "toy", "Train a small 3D CNN on generated motion clips (a quick check of the engine)");
  cmd->add_option("--steps", options->steps, "training steps")->capture_default_str();
  cmd->add_option("--batch", options->batch, "clips per step")->capture_default_str();
  cmd->add_option("--frames", options->frames, "frames per clip (even)")->capture_default_str();
  cmd->add_option("--size", options->size, "frame height and width")->capture_default_str();
  cmd->add_option("--lr", options->lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--seed", options->seed, "random seed")->capture_default_str();
  cmd->add_option("--output", options->output, "folder for the weights")->capture_default_str();
  cmd->callback([options] { run_toy(*options); });
}

}  // namespace cu3d::apps
