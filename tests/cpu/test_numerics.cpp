// Numerical faults (engine/numerics.h): the checking mode names the first layer whose output
// (forward) or gradient (backward) went non-finite, clipping by global norm matches its definition,
// and `cu3d train --check-numerics` on a model with an injected NaN weight stops naming the step,
// the layer and the last good checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "apps/app.h"
#include "cpu/cli_testing.h"
#include "engine/autograd.h"
#include "engine/numerics.h"
#include "engine/ops/elementwise.h"
#include "engine/rng.h"
#include "layers/checkpoint.h"
#include "layers/models.h"
#include "test_data_fixtures.h"

namespace cu3d {
namespace {

namespace fs = std::filesystem;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

using apps::kTinyModelNoDropout;

// Turns the checking mode on for one test.
struct CheckingMode {
  CheckingMode() { set_check_numerics(true); }
  ~CheckingMode() { set_check_numerics(false); }
};

std::shared_ptr<Module> tiny_model() {
  return build_model(nlohmann::json::parse(kTinyModelNoDropout), 3, {4, 32, 32, 1}, 3);
}

Tensor tiny_input(uint64_t seed) {
  Generator gen(seed);
  return Tensor::normal({2, 4, 32, 32, 1}, 0, 1, gen);
}

// Writes `value` into element `index` of a CPU float tensor (a parameter).
void poke(const Tensor& t, int64_t index, float value) {
  static_cast<float*>(t.raw_data())[index] = value;
}

Tensor parameter(const Module& model, const std::string& name) {
  for (const auto& [n, t] : model.named_parameters())
    if (n == name) return t;
  throw Error("no parameter " + name);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const NonFiniteError& e) {
    return e.what();
  }
  return "(no NonFiniteError)";
}

TEST(Numerics, CheckFiniteNamesTheTensorCountAndFirstElement) {
  Generator gen(1);
  Tensor t = Tensor::normal({3, 5}, 0, 1, gen);
  EXPECT_NO_THROW(check_finite(t, "t"));
  poke(t, 7, std::numeric_limits<float>::infinity());
  poke(t, 9, kNaN);
  const std::string m = message_of([&] { check_finite(t, "the thing"); });
  EXPECT_NE(m.find("the thing [3,5] holds 2 non-finite value(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("inf at element 7"), std::string::npos) << m;
}

TEST(Numerics, ForwardCheckNamesTheFirstLayerWhoseOutputWentNonFinite) {
  const auto model = tiny_model();
  poke(parameter(*model, "fc.weight"), 0, kNaN);
  const Tensor x = tiny_input(2);
  autograd::NoGradGuard no_grad;
  EXPECT_TRUE(std::isnan(model->forward(x).to_vector<float>()[0]));  // off: NaN flows through
  const CheckingMode checking;
  const std::string m = message_of([&] { model->forward(x); });
  EXPECT_NE(m.find("forward: the output of layer 'fc'"), std::string::npos) << m;
  poke(parameter(*model, "conv1.weight"), 0, kNaN);
  const std::string first = message_of([&] { model->forward(x); });
  EXPECT_NE(first.find("layer 'conv1'"), std::string::npos) << first;
}

TEST(Numerics, BackwardCheckNamesTheLayerWhoseGradientWentNonFinite) {
  const auto model = tiny_model();
  const Tensor logits = model->forward(tiny_input(3));
  Tensor seed = Tensor::full(logits.shape(), 1.0, logits.dtype(), logits.device());
  poke(seed, 1, kNaN);
  const CheckingMode checking;
  const std::string m = message_of([&] { autograd::backward(logits, seed); });
  EXPECT_NE(m.find("backward: the gradient"), std::string::npos) << m;
  EXPECT_NE(m.find("in layer 'fc'"), std::string::npos) << m;
  EXPECT_EQ(autograd::tape_size(), 0u);  // the tape is cleared for the next step
}

TEST(Numerics, ClipGradNormScalesToTheLimitAndReportsTheNorm) {
  const auto model = tiny_model();
  autograd::backward(sum(model->forward(tiny_input(4))));
  double squares = 0;
  for (const auto& [name, p] : model->named_parameters())
    for (float g : p.grad().to_vector<float>())
      squares += double(g) * g;
  const double norm = std::sqrt(squares);
  const NamedTensors params = model->named_parameters();
  EXPECT_NEAR(clip_grad_norm(params, norm * 10), norm, norm * 1e-5);  // under the limit: kept
  EXPECT_NEAR(clip_grad_norm(params, norm / 4), norm, norm * 1e-5);
  double clipped = 0;
  for (const auto& [name, p] : params)
    for (float g : p.grad().to_vector<float>())
      clipped += double(g) * g;
  EXPECT_NEAR(std::sqrt(clipped), norm / 4, norm * 1e-5);
  poke(params[0].second.grad(), 0, kNaN);
  const std::string m = message_of([&] { clip_grad_norm(params, 1.0); });
  EXPECT_NE(m.find("'" + params[0].first + "'"), std::string::npos) << m;
  EXPECT_THROW(clip_grad_norm(params, -1), Error);
}

// `cu3d train --init` from a checkpoint whose weights hold a NaN.
TEST(Numerics, TrainCheckNumericsStopsNamingStepLayerAndCheckpoint) {
  data::testing::TempDir dir;
  const fs::path model_file = dir.path() / "tiny3d.json";
  std::ofstream(model_file) << kTinyModelNoDropout;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(apps::run_cli({"synth", (dir.path() / "videos").string(), "--classes", "3", "--groups",
                           "3", "--clips", "1", "--frames", "8", "--size", "32"}),
            0);
  ASSERT_EQ(apps::run_cli({"prep", (dir.path() / "videos").string(),
                           (dir.path() / "shards").string(), "--depth", "4"}),
            0);
  // A NaN in conv1's weight: ReLU turns NaN into 0 (max(0, x) compares false), so without the
  // checking mode it never reaches the loss. A NaN in fc's weight does.
  auto checkpoint_with_nan = [&](const std::string& parameter_name) {
    const auto model = tiny_model();
    poke(parameter(*model, parameter_name), 5, kNaN);
    const fs::path path = dir.path() / (parameter_name + ".safetensors");
    save_checkpoint(path, {nlohmann::json::parse(kTinyModelNoDropout), 3, {4, 32, 32, 1}}, *model);
    return path.string();
  };
  const std::string nan_conv1 = checkpoint_with_nan("conv1.weight");
  const std::string nan_fc = checkpoint_with_nan("fc.weight");
  auto train = [&](const std::string& run, const std::string& init,
                   std::vector<std::string> extra) {
    std::vector<std::string> args = {"train",
                                     "--model",
                                     model_file.string(),
                                     "--data",
                                     (dir.path() / "shards").string(),
                                     "--init",
                                     init,
                                     "--output",
                                     (dir.path() / run).string(),
                                     "--batch",
                                     "2",
                                     "--epochs",
                                     "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return apps::run_cli(args);
  };
  ::testing::internal::GetCapturedStdout();
  ::testing::internal::GetCapturedStderr();

  ::testing::internal::CaptureStderr();
  EXPECT_NE(train("checked", nan_conv1, {"--check-numerics", "--clip-grad-norm", "1"}), 0);
  const std::string checked = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(checked.find("the output of layer 'conv1'"), std::string::npos) << checked;
  EXPECT_NE(checked.find("(step 1)"), std::string::npos) << checked;
  EXPECT_NE(checked.find("the last good checkpoint is none yet"), std::string::npos) << checked;

  ::testing::internal::CaptureStderr();
  EXPECT_NE(train("unchecked", nan_fc, {}), 0);
  const std::string unchecked = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(unchecked.find("the loss became nan"), std::string::npos) << unchecked;
  EXPECT_NE(unchecked.find("--check-numerics names the first layer"), std::string::npos)
      << unchecked;
  EXPECT_FALSE(check_numerics());  // the run restored the process-wide mode
}

}  // namespace
}  // namespace cu3d
