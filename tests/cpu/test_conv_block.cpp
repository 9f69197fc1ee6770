// The fused conv blocks (engine/ops/conv_block.h) against the chain of separate ops they replace,
// and Sequential's use of them (layers/conv_block.h). On the CPU a block runs the very kernels
// of the chain in the same order (conv, ReLU in place, pool; backward pool, ReLU, conv), so
// outputs and gradients must be equal bit for bit; any difference is a wiring error (a wrong
// mask, a missing gradient, a tensor overwritten).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/host_cache.h"
#include "engine/numerics.h"
#include "engine/ops/activation.h"
#include "engine/ops/conv_block.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"
#include "gradcheck.h"
#include "layers/basic.h"
#include "layers/conv_block.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

struct BlockCase {
  const char* name;
  Shape x;
  int filters;
  Dims3 kernel;
  Conv3dParams conv;
  Pool3dParams pool;
  bool bias = true;
};

// C3D's pool1 (1,2,2) and pool2 (2,2,2) windows, pool5's explicit padding, the Keras blocks' 3
// "same" pool, odd sizes, strides, overlapping windows, ceil mode and a conv without bias.
const std::vector<BlockCase>& block_cases() {
  static const std::vector<BlockCase> cases = {
      {"c3d pool1",
       {2, 4, 9, 10, 3},
       4,
       {3, 3, 3},
       {.padding = Padding::same},
       {.window = {1, 2, 2}, .stride = {1, 2, 2}}},
      {"c3d pool2, odd sizes", {1, 5, 7, 9, 4}, 5, {3, 3, 3}, {.padding = Padding::same}, {}},
      {"c3d pool5 padding",
       {2, 2, 7, 7, 3},
       3,
       {3, 3, 3},
       {.padding = Padding::explicit_, .pad = {1, 1, 1}},
       {.padding = Padding::explicit_, .pad = {0, 1, 1}}},
      {"keras pool 3 same",
       {1, 5, 8, 8, 2},
       3,
       {3, 3, 3},
       {.padding = Padding::same},
       {.window = {3, 3, 3}, .stride = {3, 3, 3}, .padding = Padding::same}},
      {"valid stride 2, overlapping windows, no bias",
       {2, 7, 11, 9, 3},
       4,
       {3, 2, 3},
       {.stride = {1, 2, 2}},
       {.window = {3, 3, 3}, .stride = {2, 2, 2}},
       false},
      {"ceil mode",
       {1, 6, 9, 7, 2},
       3,
       {2, 3, 3},
       {.padding = Padding::same},
       {.window = {2, 2, 2}, .stride = {2, 2, 2}, .ceil_mode = true}},
  };
  return cases;
}

enum class Chain { fused, separate };
enum class Block { relu, relu_pool };

struct Result {
  Tensor y, dx, dw, db;
};

// The block's output and the gradients of x, w, b for backward(y, r), with fresh random inputs
// drawn from `seed` (the same for both chains).
Result run_block(const BlockCase& c, Block block, Chain chain, DType dtype, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::uniform(c.x, -1, 1, gen, dtype);
  Tensor w = Tensor::uniform({c.filters, c.kernel.d, c.kernel.h, c.kernel.w, c.x.back()}, -1, 1,
                             gen, dtype);
  // A bias of -1 to -2 standard deviations of the conv's sum (taps * c products of variance 1/9)
  // makes whole pool windows negative, so that ReLU's mask shapes the pooled output and its
  // gradient (around a zero mean nearly every window holds a positive value).
  const double sigma = std::sqrt(double(c.kernel.d * c.kernel.h * c.kernel.w * c.x.back()) / 9);
  Tensor b = c.bias ? Tensor::uniform({c.filters}, -2 * sigma, -sigma, gen, dtype) : Tensor();
  for (Tensor* t : {&x, &w, &b})
    if (t->defined()) t->set_requires_grad(true);
  Tensor y;
  if (chain == Chain::fused)
    y = block == Block::relu ? conv3d_bias_relu(x, w, b, c.conv)
                             : conv3d_bias_relu_maxpool(x, w, b, c.conv, c.pool);
  else {
    y = relu(conv3d(x, w, b, c.conv));
    if (block == Block::relu_pool) y = max_pool3d(y, c.pool);
  }
  autograd::backward(y, Tensor::uniform(y.shape(), -1, 1, gen, dtype));
  return {y, x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()};
}

std::vector<double> values(const Tensor& t) {
  return t.to(DType::f64).to_vector<double>();
}

void expect_identical(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.defined(), want.defined()) << what;
  if (!want.defined()) return;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  const std::vector<double> a = values(got), b = values(want);
  int64_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i)
    differ += a[i] != b[i];
  EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << a.size() << " values differ";
}

// The ReLU must cut some values and pass others, or its mask is not tested.
void expect_mixed_signs(const Tensor& y, const std::string& what) {
  const std::vector<double> v = values(y);
  int64_t zeros = 0;
  for (double e : v)
    zeros += e == 0;
  EXPECT_GT(zeros, 0) << what;
  EXPECT_LT(zeros, int64_t(v.size())) << what;
}

void expect_block_matches_chain(Block block) {
  uint64_t seed = 100;
  for (const BlockCase& c : block_cases())
    for (DType dtype : {DType::f32, DType::f64}) {
      const std::string what = fmt::format("{} {}", c.name, dtype_name(dtype));
      const Result fused = run_block(c, block, Chain::fused, dtype, seed);
      const Result separate = run_block(c, block, Chain::separate, dtype, seed++);
      // Without bias nearly every pool window holds a positive value.
      if (c.bias || block == Block::relu) expect_mixed_signs(fused.y, what);
      expect_identical(fused.y, separate.y, what + " y");
      expect_identical(fused.dx, separate.dx, what + " dx");
      expect_identical(fused.dw, separate.dw, what + " dw");
      expect_identical(fused.db, separate.db, what + " db");
    }
}

TEST(ConvBlock, BiasReluEqualsConvThenRelu) {
  expect_block_matches_chain(Block::relu);
}

TEST(ConvBlock, BiasReluMaxpoolEqualsConvThenReluThenPool) {
  expect_block_matches_chain(Block::relu_pool);
}

TEST(ConvBlock, GradientsMatchFiniteDifferences) {
  Generator gen(7);
  const Conv3dParams same{.padding = Padding::same};
  expect_gradients_match(
      [&](const auto& in) { return conv3d_bias_relu(in[0], in[1], in[2], same); },
      {random_f64({1, 3, 4, 5, 2}, gen), random_f64({3, 3, 3, 3, 2}, gen), random_f64({3}, gen)});
  expect_gradients_match(
      [&](const auto& in) {
        return conv3d_bias_relu_maxpool(in[0], in[1], in[2], same,
                                        {.window = {1, 2, 2}, .stride = {1, 2, 2}});
      },
      {random_f64({2, 3, 4, 5, 2}, gen), random_f64({3, 3, 3, 3, 2}, gen), random_f64({3}, gen)});
  expect_gradients_match(
      [](const auto& in) {
        return conv3d_bias_relu_maxpool(in[0], in[1], Tensor(), {.stride = {1, 2, 1}},
                                        {.padding = Padding::explicit_, .pad = {0, 1, 1}});
      },
      {random_f64({1, 4, 7, 5, 2}, gen), random_f64({2, 2, 3, 2, 2}, gen)});
}

TEST(ConvBlock, OnlyTheInputsThatNeedItGetAGradient) {
  Generator gen(8);
  const Tensor x = Tensor::uniform({1, 3, 6, 6, 2}, -1, 1, gen);  // a network's input batch
  Tensor w = Tensor::uniform({3, 3, 3, 3, 2}, -1, 1, gen), b = Tensor::uniform({3}, -1, 1, gen);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  autograd::backward(sum(conv3d_bias_relu_maxpool(x, w, b, {.padding = Padding::same}, {})));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_TRUE(w.grad().defined());
  EXPECT_TRUE(b.grad().defined());
}

// Without a gradient to compute, the pooled block records nothing and frees its ReLU output z at
// once: the host cache (engine/host_cache.h) receives z's block when the op returns; with a
// gradient the tape holds z until backward.
TEST(ConvBlock, InferenceKeepsNoReluOutput) {
  if (host_cache_limit() == 0) GTEST_SKIP() << "CU3D_HOST_CACHE_MB=0 turns the host cache off";
  Generator gen(9);
  const Tensor x = Tensor::uniform({1, 8, 32, 32, 3}, -1, 1, gen);
  Tensor w = Tensor::uniform({64, 3, 3, 3, 3}, -1, 1, gen), b = Tensor::uniform({64}, -1, 1, gen);
  const std::size_t z_bytes = std::size_t(8) * 32 * 32 * 64 * sizeof(float);  // 2 MiB: cached
  const Conv3dParams same{.padding = Padding::same};
  w.set_requires_grad(true);

  host_cache_release();
  Tensor pooled;
  {
    autograd::NoGradGuard no_grad;
    pooled = conv3d_bias_relu_maxpool(x, w, b, same, {});
  }
  EXPECT_EQ(autograd::tape_size(), 0u);
  EXPECT_GE(host_cache_cached_bytes(), z_bytes) << "z was freed when the op returned";

  host_cache_release();
  pooled = conv3d_bias_relu_maxpool(x, w, b, same, {});
  EXPECT_EQ(autograd::tape_size(), 1u);
  EXPECT_LT(host_cache_cached_bytes(), z_bytes) << "training keeps z for backward";
  autograd::clear_tape();
  EXPECT_GE(host_cache_cached_bytes(), z_bytes) << "the tape held z";
  host_cache_release();
}

TEST(ConvBlock, BadInputNamesTheOpAndShapes) {
  Generator gen(10);
  const Tensor x = Tensor::uniform({1, 2, 4, 4, 3}, -1, 1, gen);
  const Tensor w = Tensor::uniform({4, 3, 3, 3, 2}, -1, 1, gen);
  try {
    conv3d_bias_relu(x, w, Tensor(), {});
    ADD_FAILURE() << "channel mismatch accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conv3d_bias_relu"), std::string::npos) << m;
    EXPECT_NE(m.find("[1,2,4,4,3]"), std::string::npos) << m;
  }
  const Tensor w3 = Tensor::uniform({4, 1, 3, 3, 3}, -1, 1, gen);
  try {
    // The valid conv's output is 2x2x2; a 3x3x3 window does not fit.
    conv3d_bias_relu_maxpool(x, w3, Tensor(), {}, {.window = {3, 3, 3}, .stride = {3, 3, 3}});
    ADD_FAILURE() << "a pool window larger than the conv's output accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conv3d_bias_relu_maxpool"), std::string::npos) << m;
    EXPECT_NE(m.find("pooling the conv's output [1,2,2,2,4]"), std::string::npos) << m;
  }
}

// ---- Sequential ------------------------------------------------------------------------------

// Every block kind in a small model: conv + ReLU + pool (C3D's pool1 window), conv + ReLU
// without pool, conv + ReLU + pool5-like padded pool, then a head.
std::shared_ptr<Sequential> block_model(uint64_t seed) {
  Generator gen(seed);
  auto net = std::make_shared<Sequential>();
  const Conv3dParams same{.padding = Padding::same};
  net->add("conv1", std::make_shared<Conv3d>(3, 4, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu1", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool1", std::make_shared<MaxPool3d>(Pool3dParams{{1, 2, 2}, {1, 2, 2}}));
  net->add("conv2",
           std::make_shared<Conv3d>(4, 6, Dims3{3, 3, 3}, Conv3dParams{}, InitStyle::pytorch, gen));
  net->add("relu2", std::make_shared<Activation>(ActivationKind::relu));
  net->add("conv3", std::make_shared<Conv3d>(6, 6, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu3", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool3", std::make_shared<MaxPool3d>(
                        Pool3dParams{.padding = Padding::explicit_, .pad = {0, 1, 1}}));
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc", std::make_shared<Dense>(24, 5, InitStyle::pytorch, gen));
  return net;
}

class FusionSwitch {
 public:
  explicit FusionSwitch(bool fuse) : saved_(compute_options().fuse) {
    compute_options().fuse = fuse;
  }
  ~FusionSwitch() { compute_options().fuse = saved_; }

 private:
  bool saved_;
};

TEST(ConvBlockLayers, FusesConvReluAndTheFollowingPool) {
  const auto net = block_model(1);
  const NamedModules& layers = net->children();
  const FusionSwitch on(true);
  EXPECT_EQ(fused_layer_count(layers, 0), 3u);  // conv1 relu1 pool1
  EXPECT_EQ(fused_layer_count(layers, 1), 1u);  // a ReLU starts no block
  EXPECT_EQ(fused_layer_count(layers, 3), 2u);  // conv2 relu2, a conv follows
  EXPECT_EQ(fused_layer_count(layers, 5), 3u);  // conv3 relu3 pool3
  EXPECT_EQ(fused_layer_count(layers, 9), 1u);  // the dense head
  {
    const FusionSwitch off(false);
    EXPECT_EQ(fused_layer_count(layers, 0), 1u);
  }
  set_check_numerics(true);
  EXPECT_EQ(fused_layer_count(layers, 0), 1u) << "checking mode tests each layer's output";
  set_check_numerics(false);
}

TEST(ConvBlockLayers, OtherActivationsAreNotFused) {
  Generator gen(2);
  for (ActivationKind kind :
       {ActivationKind::leaky_relu, ActivationKind::sigmoid, ActivationKind::softmax}) {
    Sequential net;
    net.add("conv",
            std::make_shared<Conv3d>(2, 2, Dims3{3, 3, 3}, Conv3dParams{}, InitStyle::keras, gen));
    net.add("act", std::make_shared<Activation>(kind));
    net.add("pool", std::make_shared<MaxPool3d>(Pool3dParams{}));
    EXPECT_EQ(fused_layer_count(net.children(), 0), 1u) << net.children()[1].second->describe();
  }
}

// A few Adam steps of the same model fused and unfused: the same kernels run in the same order,
// so the weights stay bitwise equal. The tape confirms the fused run used the blocks (one entry
// for each conv + ReLU (+ pool) instead of two or three).
TEST(ConvBlockLayers, TrainingFusedAndUnfusedGivesTheSameWeights) {
  Generator data_gen(3);
  const Tensor clips = Tensor::uniform({3, 4, 9, 10, 3}, -1, 1, data_gen);
  const Tensor labels = Tensor::from_vector<int32_t>({1, 4, 0}, {3});
  std::vector<NamedTensors> weights;
  std::vector<std::size_t> tape_entries;
  for (bool fuse : {true, false}) {
    const FusionSwitch mode(fuse);
    const auto net = block_model(4);
    Adam adam(net->named_parameters(), AdamOptions{.lr = 1e-2});
    for (int step = 0; step < 3; ++step) {
      adam.zero_grad();
      const Tensor loss = softmax_cross_entropy((*net)(clips), labels);
      if (step == 0) tape_entries.push_back(autograd::tape_size());
      autograd::backward(loss);
      adam.step();
    }
    weights.push_back(net->named_parameters());
  }
  EXPECT_EQ(tape_entries[1] - tape_entries[0], 5u) << "2 three-layer and 1 two-layer blocks";
  ASSERT_EQ(weights[0].size(), weights[1].size());
  for (size_t i = 0; i < weights[0].size(); ++i)
    expect_identical(weights[0][i].second, weights[1][i].second, weights[0][i].first);
}

TEST(ConvBlockLayers, InferenceFusedEqualsUnfused) {
  Generator data_gen(5);
  const Tensor clips = Tensor::uniform({2, 4, 9, 10, 3}, -1, 1, data_gen);
  const auto net = block_model(6);
  net->eval();
  autograd::NoGradGuard no_grad;
  Tensor fused, separate;
  {
    const FusionSwitch on(true);
    fused = (*net)(clips);
  }
  {
    const FusionSwitch off(false);
    separate = (*net)(clips);
  }
  expect_identical(fused, separate, "logits");
}

}  // namespace
}  // namespace cu3d
