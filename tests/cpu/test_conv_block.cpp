// The fused conv blocks (engine/ops/conv_block.h) against the chain of separate ops they replace,
// and Sequential's use of them (layers/conv_block.h). On the CPU a block does the chain's
// arithmetic in the same order (the conv kernel with ReLU in its store, pool; backward pool, ReLU,
// conv), so outputs and gradients must be equal bit for bit; any difference is a wiring error (a
// wrong mask, a missing gradient, a tensor overwritten) or an epilogue that is not ReLU.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
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
#include "engine/ops/norm.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"
#include "gradcheck.h"
#include "layers/basic.h"
#include "layers/conv_block.h"
#include "layers/norm.h"

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
// "same" pool, odd sizes, strides, overlapping windows, ceil mode, a conv without bias and one
// with more filters than a vector holds.
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
      // 40 filters: the CPU kernel's ReLU epilogue on full and masked vectors (16 + 16 + 8).
      {"40 filters, 17 channels",
       {1, 3, 6, 7, 17},
       40,
       {3, 3, 3},
       {.padding = Padding::same},
       {.window = {1, 2, 2}, .stride = {1, 2, 2}}},
  };
  return cases;
}

enum class Chain { fused, separate };

// Which block: with or without the layer norm (in which variant) and the pool.
struct Block {
  bool pool;
  std::optional<LayerNormVariant> norm;
  std::string name() const {
    const char* variant =
        norm == LayerNormVariant::per_sample ? " per-sample norm" : " per-position norm";
    return fmt::format("{}{}", pool ? "pool" : "no pool", norm ? variant : "");
  }
};

// Fresh random x, w, b (undefined without bias), and gamma, beta with a norm, all requiring a
// gradient.
std::vector<Tensor> block_inputs(const BlockCase& c, const Block& block, DType dtype,
                                 Generator& gen) {
  const int64_t k = c.filters;
  Tensor x = Tensor::uniform(c.x, -1, 1, gen, dtype);
  Tensor w =
      Tensor::uniform({k, c.kernel.d, c.kernel.h, c.kernel.w, c.x.back()}, -1, 1, gen, dtype);
  // A bias of -1 to -2 standard deviations of the conv's sum (taps * c products of variance 1/9)
  // makes whole pool windows negative, so that ReLU's mask shapes the pooled output and its
  // gradient (around a zero mean nearly every window holds a positive value). After a layer
  // norm beta does that.
  const double sigma = std::sqrt(double(c.kernel.d * c.kernel.h * c.kernel.w * c.x.back()) / 9);
  Tensor b = c.bias ? Tensor::uniform({k}, -2 * sigma, -sigma, gen, dtype) : Tensor();
  std::vector<Tensor> in = {x, w, b};
  if (block.norm) {
    in.push_back(Tensor::uniform({k}, 0.5, 1.5, gen, dtype));
    in.push_back(Tensor::uniform({k}, -2, -1, gen, dtype));
  }
  for (Tensor& t : in)
    if (t.defined()) t.set_requires_grad(true);
  return in;
}

Tensor fused_block(const BlockCase& c, const Block& block, const std::vector<Tensor>& in) {
  if (block.norm) {
    const LayerNormParams norm{.variant = *block.norm};
    return block.pool ? conv3d_bias_layernorm_relu_maxpool(in[0], in[1], in[2], in[3], in[4],
                                                           c.conv, norm, c.pool)
                      : conv3d_bias_layernorm_relu(in[0], in[1], in[2], in[3], in[4], c.conv, norm);
  }
  return block.pool ? conv3d_bias_relu_maxpool(in[0], in[1], in[2], c.conv, c.pool)
                    : conv3d_bias_relu(in[0], in[1], in[2], c.conv);
}

Tensor separate_ops(const BlockCase& c, const Block& block, const std::vector<Tensor>& in) {
  Tensor y = conv3d(in[0], in[1], in[2], c.conv);
  if (block.norm) y = layer_norm(y, in[3], in[4], 1e-5, *block.norm);
  y = relu(y);
  return block.pool ? max_pool3d(y, c.pool) : y;
}

// The block's output, then the gradient of every input for backward(y, r), with inputs drawn
// from `seed` (the same for both chains).
std::vector<Tensor> run_block(const BlockCase& c, const Block& block, Chain chain, DType dtype,
                              uint64_t seed) {
  Generator gen(seed);
  const std::vector<Tensor> in = block_inputs(c, block, dtype, gen);
  const Tensor y = chain == Chain::fused ? fused_block(c, block, in) : separate_ops(c, block, in);
  autograd::backward(y, Tensor::uniform(y.shape(), -1, 1, gen, dtype));
  std::vector<Tensor> out = {y};
  for (const Tensor& t : in)
    out.push_back(t.defined() ? t.grad() : Tensor());
  return out;
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

void expect_block_matches_chain(const Block& block) {
  static const char* const kNames[] = {"y", "dx", "dw", "db", "dgamma", "dbeta"};
  uint64_t seed = 100;
  for (const BlockCase& c : block_cases())
    for (DType dtype : {DType::f32, DType::f64}) {
      const std::string what = fmt::format("{}, {}, {}", c.name, block.name(), dtype_name(dtype));
      const std::vector<Tensor> fused = run_block(c, block, Chain::fused, dtype, seed);
      const std::vector<Tensor> separate = run_block(c, block, Chain::separate, dtype, seed++);
      // Without bias or norm nearly every pool window holds a positive value.
      if (c.bias || block.norm || !block.pool) expect_mixed_signs(fused[0], what);
      ASSERT_EQ(fused.size(), separate.size());
      for (size_t i = 0; i < fused.size(); ++i)
        expect_identical(fused[i], separate[i], what + " " + kNames[i]);
    }
}

TEST(ConvBlock, BiasReluEqualsConvThenRelu) {
  expect_block_matches_chain({.pool = false, .norm = std::nullopt});
}

TEST(ConvBlock, BiasReluMaxpoolEqualsConvThenReluThenPool) {
  expect_block_matches_chain({.pool = true, .norm = std::nullopt});
}

TEST(ConvBlock, LayerNormBlocksEqualConvThenLayerNormThenReluThenPool) {
  for (LayerNormVariant variant : {LayerNormVariant::per_sample, LayerNormVariant::per_position})
    for (bool pool : {false, true})
      expect_block_matches_chain({.pool = pool, .norm = variant});
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
  for (LayerNormVariant variant : {LayerNormVariant::per_sample, LayerNormVariant::per_position}) {
    const LayerNormParams norm{.variant = variant};
    expect_gradients_match(
        [&](const auto& in) {
          return conv3d_bias_layernorm_relu(in[0], in[1], in[2], in[3], in[4], same, norm);
        },
        {random_f64({2, 3, 4, 3, 2}, gen), random_f64({3, 3, 3, 3, 2}, gen), random_f64({3}, gen),
         random_f64({3}, gen), random_f64({3}, gen)});
    expect_gradients_match(
        [&](const auto& in) {
          return conv3d_bias_layernorm_relu_maxpool(in[0], in[1], in[2], in[3], in[4], same, norm,
                                                    {});
        },
        {random_f64({2, 4, 4, 5, 2}, gen), random_f64({3, 3, 3, 3, 2}, gen), random_f64({3}, gen),
         random_f64({3}, gen), random_f64({3}, gen)});
  }
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
// without pool, conv + ReLU + pool5-like padded pool, then a head; with `norm`, the second and
// third convs are followed by a layer norm before their ReLU (the layer-norm C3D's blocks).
std::shared_ptr<Sequential> block_model(uint64_t seed, bool norm = false) {
  Generator gen(seed);
  auto net = std::make_shared<Sequential>();
  const Conv3dParams same{.padding = Padding::same};
  net->add("conv1", std::make_shared<Conv3d>(3, 4, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu1", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool1", std::make_shared<MaxPool3d>(Pool3dParams{{1, 2, 2}, {1, 2, 2}}));
  net->add("conv2",
           std::make_shared<Conv3d>(4, 6, Dims3{3, 3, 3}, Conv3dParams{}, InitStyle::pytorch, gen));
  if (norm) net->add("norm2", std::make_shared<LayerNorm>(6, LayerNormVariant::per_sample));
  net->add("relu2", std::make_shared<Activation>(ActivationKind::relu));
  net->add("conv3", std::make_shared<Conv3d>(6, 6, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  if (norm) net->add("norm3", std::make_shared<LayerNorm>(6, LayerNormVariant::per_position));
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
  const auto with_norm = block_model(1, true);
  EXPECT_EQ(fused_layer_count(with_norm->children(), 3), 3u);  // conv2 norm2 relu2
  EXPECT_EQ(fused_layer_count(with_norm->children(), 6), 4u);  // conv3 norm3 relu3 pool3
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
  Sequential batch_norm;  // only the layer norm of the layer-norm C3D is fused
  batch_norm.add("conv", std::make_shared<Conv3d>(2, 2, Dims3{3, 3, 3}, Conv3dParams{},
                                                  InitStyle::keras, gen));
  batch_norm.add("norm", std::make_shared<BatchNorm>(2));
  batch_norm.add("relu", std::make_shared<Activation>(ActivationKind::relu));
  EXPECT_EQ(fused_layer_count(batch_norm.children(), 0), 1u);
}

// A few Adam steps of the same model fused and unfused: the same kernels run in the same order,
// so the weights stay bitwise equal. The tape confirms the fused run used the blocks (one entry
// per block instead of one per layer).
void expect_training_unchanged_by_fusion(bool norm, std::size_t entries_saved) {
  Generator data_gen(3);
  const Tensor clips = Tensor::uniform({3, 4, 9, 10, 3}, -1, 1, data_gen);
  const Tensor labels = Tensor::from_vector<int32_t>({1, 4, 0}, {3});
  std::vector<NamedTensors> weights;
  std::vector<std::size_t> tape_entries;
  for (bool fuse : {true, false}) {
    const FusionSwitch mode(fuse);
    const auto net = block_model(4, norm);
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
  EXPECT_EQ(tape_entries[1] - tape_entries[0], entries_saved);
  ASSERT_EQ(weights[0].size(), weights[1].size());
  for (size_t i = 0; i < weights[0].size(); ++i)
    expect_identical(weights[0][i].second, weights[1][i].second, weights[0][i].first);
}

TEST(ConvBlockLayers, TrainingFusedAndUnfusedGivesTheSameWeights) {
  expect_training_unchanged_by_fusion(false, 5);  // 8 layers in 3 blocks
}

TEST(ConvBlockLayers, TrainingWithLayerNormFusedAndUnfusedGivesTheSameWeights) {
  expect_training_unchanged_by_fusion(true, 7);  // 10 layers in 3 blocks
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
