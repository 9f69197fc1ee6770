// Engine-level CUDA parity: every op that has a CUDA path, run through the tape on CUDA tensors,
// against the same op on the CPU in f32 — forward output and the gradients of every input.
// (tests/gpu/parity_* check the kernels one by one; this checks the engine's wiring: shapes,
// devices, saved tensors, backward dispatch, gradient accumulation, optimizers.)
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <optional>

#include "data/toy_motion.h"
#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/ops/activation.h"
#include "engine/ops/conv.h"
#include "engine/ops/conv_block.h"
#include "engine/ops/dense.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/norm.h"
#include "engine/ops/pool.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"
#include "gpu/require_gpu.h"
#include "layers/toy_cnn.h"
#include "toy_model.h"

namespace cu3d {
namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

double relative_error(const Tensor& got, const Tensor& want) {
  const auto a = got.to(Device::cpu()).to_vector<float>();
  const auto b = want.to(Device::cpu()).to_vector<float>();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

// Runs `fn` on `inputs` (CPU f32) on both devices; the inputs listed in `differentiable` get
// gradients from backward(y, r) with the same random r on both.
void expect_devices_agree(const char* name, const OpFn& fn, const std::vector<Tensor>& inputs,
                          std::vector<int> differentiable, double tolerance = 1e-5) {
  SCOPED_TRACE(name);
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& t : inputs) {
    cpu_in.push_back(t.clone());
    gpu_in.push_back(t.to(Device::cuda()));
  }
  for (int i : differentiable) {
    cpu_in[i].set_requires_grad(true);
    gpu_in[i].set_requires_grad(true);
  }
  // One device at a time: backward consumes the whole tape.
  Generator gen(99);
  const Tensor y_cpu = fn(cpu_in);
  const Tensor r = Tensor::uniform(y_cpu.shape(), -1, 1, gen);
  if (!differentiable.empty()) autograd::backward(y_cpu, r);
  const Tensor y_gpu = fn(gpu_in);
  ASSERT_EQ(y_gpu.device(), Device::cuda());
  ASSERT_EQ(y_gpu.shape(), y_cpu.shape());
  EXPECT_LT(relative_error(y_gpu, y_cpu), tolerance) << "forward";
  if (differentiable.empty()) return;
  autograd::backward(y_gpu, r.to(Device::cuda()));
  for (int i : differentiable) {
    ASSERT_TRUE(gpu_in[i].grad().defined()) << "input " << i;
    EXPECT_EQ(gpu_in[i].grad().device(), Device::cuda());
    EXPECT_LT(relative_error(gpu_in[i].grad(), cpu_in[i].grad()), tolerance) << "input " << i;
  }
}

Tensor rand(const Shape& shape, Generator& gen) {
  return Tensor::uniform(shape, -1, 1, gen);
}

TEST(EngineCuda, ElementwiseAndActivations) {
  CU3D_REQUIRE_GPU();
  Generator gen(1);
  const Tensor a = rand({3, 5, 7, 9}, gen), b = rand({3, 5, 7, 9}, gen);
  expect_devices_agree("add", [](auto& in) { return add(in[0], in[1]); }, {a, b}, {0, 1});
  expect_devices_agree("mul", [](auto& in) { return mul(in[0], in[1]); }, {a, b}, {0, 1});
  expect_devices_agree("scale", [](auto& in) { return scale(in[0], -0.3); }, {a}, {0});
  expect_devices_agree("mean", [](auto& in) { return mean(in[0]); }, {a}, {0});
  expect_devices_agree("relu", [](auto& in) { return relu(in[0]); }, {a}, {0});
  expect_devices_agree("leaky_relu", [](auto& in) { return leaky_relu(in[0], 0.3); }, {a}, {0});
  expect_devices_agree("sigmoid", [](auto& in) { return sigmoid(in[0]); }, {a}, {0});
  expect_devices_agree("dropout", [](auto& in) { return dropout(in[0], 0.4, true, 7, 3); }, {a},
                       {0});
  // A tensor used twice accumulates its gradient on the device.
  expect_devices_agree("reuse", [](auto& in) { return mul(relu(in[0]), sigmoid(in[0])); }, {a},
                       {0});
}

TEST(EngineCuda, NormAndLoss) {
  CU3D_REQUIRE_GPU();
  Generator gen(2);
  const Tensor x = rand({2, 3, 5, 6, 8}, gen), gamma = rand({8}, gen), beta = rand({8}, gen);
  for (auto variant : {LayerNormVariant::per_sample, LayerNormVariant::per_position})
    expect_devices_agree(
        "layer_norm",
        [variant](auto& in) { return layer_norm(in[0], in[1], in[2], 1e-5, variant); },
        {x, gamma, beta}, {0, 1, 2}, 1e-4);
  const Tensor rm = rand({8}, gen), rv = Tensor::uniform({8}, 0.5, 2, gen);
  for (bool training : {true, false})
    expect_devices_agree(
        "batch_norm",
        [&, training](auto& in) {
          return batch_norm(in[0], in[1], in[2], rm.clone().to(in[0].device()),
                            rv.clone().to(in[0].device()), training, 0.1, 1e-3);
        },
        {x, gamma, beta}, {0, 1, 2}, 1e-4);
  expect_devices_agree("softmax", [](auto& in) { return softmax(in[0]); }, {x}, {0});
  Tensor labels = Tensor::from_vector<int32_t>({3, 0, 9, 4, 4, 1}, {6});
  expect_devices_agree(
      "softmax_cross_entropy",
      [&labels](auto& in) { return softmax_cross_entropy(in[0], labels.to(in[0].device())); },
      {Tensor::uniform({6, 10}, -4, 4, gen)}, {0});
}

// The memory-bound ops that cuDNN also has, on each backend against the CPU: ReLU and sigmoid
// (leaky ReLU stays on cu3d), the softmax, and batch norm in training (its running statistics
// updated once, though auto times both backends first) and evaluation, with and without a
// backward (cuDNN's evaluation forward saves no statistics: with a backward it runs on cu3d).
TEST(EngineCuda, ActivationsSoftmaxAndBatchNormOnEveryBackend) {
  CU3D_REQUIRE_GPU();
  Generator gen(12);
  const Tensor a = rand({3, 5, 7, 9}, gen), x = rand({2, 3, 5, 6, 8}, gen);
  const Tensor gamma = rand({8}, gen), beta = rand({8}, gen);
  const Tensor rm = rand({8}, gen), rv = Tensor::uniform({8}, 0.5, 2, gen);
  const ComputeOptions saved = compute_options();
  for (Backend backend : {Backend::cu3d, Backend::cudnn, Backend::auto_select}) {
    compute_options().backends = OpBackends::all(backend);
    SCOPED_TRACE(to_string(backend));
    expect_devices_agree("relu", [](auto& in) { return relu(in[0]); }, {a}, {0});
    expect_devices_agree("sigmoid", [](auto& in) { return sigmoid(in[0]); }, {a}, {0});
    expect_devices_agree("leaky_relu", [](auto& in) { return leaky_relu(in[0], 0.3); }, {a}, {0});
    expect_devices_agree("softmax", [](auto& in) { return softmax(in[0]); }, {x}, {0});
    for (bool training : {true, false})
      for (const std::vector<int>& grads : {std::vector<int>{0, 1, 2}, std::vector<int>{}}) {
        SCOPED_TRACE(training ? "training" : "evaluation");
        expect_devices_agree(
            "batch_norm",
            [&, training](auto& in) {
              return batch_norm(in[0], in[1], in[2], rm.clone().to(in[0].device()),
                                rv.clone().to(in[0].device()), training, 0.1, 1e-3);
            },
            {x, gamma, beta}, grads, 1e-4);
      }
    Tensor cpu_mean = rm.clone(), cpu_var = rv.clone();
    Tensor gpu_mean = rm.to(Device::cuda()), gpu_var = rv.to(Device::cuda());
    batch_norm(x, gamma, beta, cpu_mean, cpu_var, true, 0.1, 1e-3);
    batch_norm(x.to(Device::cuda()), gamma.to(Device::cuda()), beta.to(Device::cuda()), gpu_mean,
               gpu_var, true, 0.1, 1e-3);
    EXPECT_LT(relative_error(gpu_mean, cpu_mean), 1e-5) << "running mean, updated once";
    EXPECT_LT(relative_error(gpu_var, cpu_var), 1e-5) << "running variance, updated once";
  }
  compute_options() = saved;
}

TEST(EngineCuda, ConvAndPoolOnEveryBackend) {
  CU3D_REQUIRE_GPU();
  Generator gen(3);
  const Tensor x = rand({2, 5, 9, 11, 6}, gen), w = rand({8, 3, 3, 3, 6}, gen), b = rand({8}, gen);
  const ComputeOptions saved = compute_options();
  for (Backend backend : {Backend::cu3d, Backend::cudnn, Backend::auto_select}) {
    compute_options().backends = OpBackends::all(backend);
    compute_options().precision = Precision::fp32;
    SCOPED_TRACE(to_string(backend));
    expect_devices_agree(
        "conv3d same",
        [](auto& in) { return conv3d(in[0], in[1], in[2], {.padding = Padding::same}); }, {x, w, b},
        {0, 1, 2});
    expect_devices_agree(
        "conv3d explicit stride 2",
        [](auto& in) {
          return conv3d(in[0], in[1], in[2],
                        {.stride = {2, 2, 2}, .padding = Padding::explicit_, .pad = {1, 1, 1}});
        },
        {x, w, b}, {0, 1, 2});
    expect_devices_agree(
        "conv2d", [](auto& in) { return conv2d(in[0], in[1], in[2], {.padding = Padding::same}); },
        {rand({3, 10, 12, 4}, gen), rand({5, 3, 3, 4}, gen), rand({5}, gen)}, {0, 1, 2});
  }
  compute_options() = saved;
  // Keras "same" with stride 2 pads more after than before: only the cu3d kernels take it.
  expect_devices_agree(
      "conv3d same stride 2",
      [](auto& in) {
        return conv3d(in[0], in[1], in[2], {.stride = {2, 2, 2}, .padding = Padding::same});
      },
      {x, w, b}, {0, 1, 2});
  expect_devices_agree("max_pool3d", [](auto& in) { return max_pool3d(in[0], {}); }, {x}, {0});
  expect_devices_agree("max_pool3d same 3",
                       [](auto& in) {
                         return max_pool3d(in[0], {{3, 3, 3}, {3, 3, 3}, Padding::same});
                       },
                       {x}, {0});
  expect_devices_agree("max_pool2d", [](auto& in) { return max_pool2d(in[0], {}); },
                       {rand({2, 8, 10, 3}, gen)}, {0});
}

// The fused conv blocks (engine/ops/conv_block.h) on CUDA tensors against the same ops on the
// CPU (which equal the conv -> ReLU -> max-pool chain bit for bit, tests/cpu/test_conv_block.cpp).
// With cu3d's conv the fused kernels run: in training the atomic-max epilogue that also writes z,
// in inference (no gradient) the window-major one where the windows tile the output (the even
// shape with pool1/pool2) and the atomic one elsewhere; with cuDNN the separate ops.
TEST(EngineCuda, FusedConvBlocksOnEveryBackend) {
  CU3D_REQUIRE_GPU();
  Generator gen(6);
  const Tensor w = rand({8, 3, 3, 3, 6}, gen), b = rand({8}, gen);
  const Conv3dParams same{.padding = Padding::same};
  const std::vector<std::pair<const char*, Pool3dParams>> pools = {
      {"pool1", {.window = {1, 2, 2}, .stride = {1, 2, 2}}},
      {"pool2", {}},
      {"pool5", {.padding = Padding::explicit_, .pad = {0, 1, 1}}},
      {"keras 3 same", {.window = {3, 3, 3}, .stride = {3, 3, 3}, .padding = Padding::same}}};
  const ComputeOptions saved = compute_options();
  for (Backend backend : {Backend::cu3d, Backend::cudnn, Backend::auto_select}) {
    compute_options().backends = OpBackends::all(backend);
    compute_options().precision = Precision::fp32;
    SCOPED_TRACE(to_string(backend));
    for (const Shape& shape : {Shape{2, 4, 8, 10, 6}, Shape{2, 5, 9, 11, 6}}) {
      const Tensor x = rand(shape, gen);
      for (const std::vector<int>& grads : {std::vector<int>{0, 1, 2}, std::vector<int>{}}) {
        SCOPED_TRACE(grads.empty() ? "inference" : "training");
        expect_devices_agree(
            "conv3d_bias_relu",
            [&](auto& in) { return conv3d_bias_relu(in[0], in[1], in[2], same); }, {x, w, b},
            grads);
        for (const auto& named_pool : pools) {
          const Pool3dParams& pool = named_pool.second;
          expect_devices_agree(
              named_pool.first,
              [&](auto& in) { return conv3d_bias_relu_maxpool(in[0], in[1], in[2], same, pool); },
              {x, w, b}, grads);
        }
      }
    }
  }
  compute_options() = saved;
}

// The layer-norm blocks likewise: with cu3d's conv the statistics come from the conv's epilogue
// and one pass normalizes, applies ReLU and pools. Tolerance as the layer_norm op's.
TEST(EngineCuda, FusedLayerNormBlocksOnEveryBackend) {
  CU3D_REQUIRE_GPU();
  Generator gen(8);
  const Tensor x = rand({2, 4, 8, 10, 6}, gen), w = rand({8, 3, 3, 3, 6}, gen);
  const Tensor b = rand({8}, gen), gamma = rand({8}, gen), beta = rand({8}, gen);
  const Conv3dParams same{.padding = Padding::same};
  const Pool3dParams pool1{.window = {1, 2, 2}, .stride = {1, 2, 2}};
  const ComputeOptions saved = compute_options();
  for (Backend backend : {Backend::cu3d, Backend::cudnn}) {
    compute_options().backends = OpBackends::all(backend);
    compute_options().precision = Precision::fp32;
    SCOPED_TRACE(to_string(backend));
    for (auto variant : {LayerNormVariant::per_sample, LayerNormVariant::per_position}) {
      const LayerNormParams norm{.variant = variant};
      for (const std::vector<int>& grads : {std::vector<int>{0, 1, 2, 3, 4}, std::vector<int>{}}) {
        SCOPED_TRACE(grads.empty() ? "inference" : "training");
        expect_devices_agree(
            "conv3d_bias_layernorm_relu",
            [&](auto& in) {
              return conv3d_bias_layernorm_relu(in[0], in[1], in[2], in[3], in[4], same, norm);
            },
            {x, w, b, gamma, beta}, grads, 1e-4);
        expect_devices_agree(
            "conv3d_bias_layernorm_relu_maxpool",
            [&](auto& in) {
              return conv3d_bias_layernorm_relu_maxpool(in[0], in[1], in[2], in[3], in[4], same,
                                                        norm, pool1);
            },
            {x, w, b, gamma, beta}, grads, 1e-4);
      }
    }
  }
  compute_options() = saved;
}

// Runs `fn` on CUDA copies of `inputs` with two settings of cu3d's conv kernels
// (`configure(false)`, then `configure(true)`) in the precision set, and compares the outputs and
// the gradients of every input. The forward's versions round the operands alike and sum in the
// same order, so a max-pool after them picks the same maxima; backward-data and bwd-filter sum in
// other orders.
void expect_conv_settings_agree(const char* name, const OpFn& fn, const std::vector<Tensor>& inputs,
                                double tolerance, const std::function<void(bool)>& configure) {
  SCOPED_TRACE(name);
  Generator gen(98);
  std::optional<Tensor> r;
  std::vector<Tensor> results[2];
  for (bool pipelined : {false, true}) {
    configure(pipelined);
    std::vector<Tensor> in;
    for (const Tensor& t : inputs) {
      in.push_back(t.to(Device::cuda()));
      in.back().set_requires_grad(true);
    }
    const Tensor y = fn(in);
    if (!r) r = Tensor::uniform(y.shape(), -1, 1, gen).to(Device::cuda());
    autograd::backward(y, *r);
    results[pipelined].push_back(y.clone());
    for (const Tensor& t : in) {
      ASSERT_TRUE(t.grad().defined()) << (pipelined ? "second setting" : "first setting");
      results[pipelined].push_back(t.grad());
    }
  }
  for (size_t i = 0; i < results[0].size(); ++i)
    EXPECT_LT(relative_error(results[1][i], results[0][i]), tolerance)
        << (i == 0 ? "forward" : "gradient of input " + std::to_string(i - 1));
}

// Version 2 (first) against version 3 (second): the engine's pipelined_conv.
void expect_conv_versions_agree(const char* name, const OpFn& fn, const std::vector<Tensor>& inputs,
                                double tolerance) {
  expect_conv_settings_agree(name, fn, inputs, tolerance,
                             [](bool v3) { compute_options().pipelined_conv = v3; });
}

// cu3d's conv on version 3 alone, whatever the defaults: the tests below compare each later
// version with it, or with version 5.
void use_version3_alone() {
  ComputeOptions& o = compute_options();
  o.backends = OpBackends::all(Backend::cu3d);
  o.pipelined_conv = true;
  o.pipelined_bwd_filter = o.wide_conv = o.wgmma_conv = o.wgmma_ws_conv = o.tma_conv = false;
}

// `--pipelined-conv`: cu3d's conv on its version 3 kernels (forward and bwd-data at 64
// channels, bwd-filter on version 2), alone against the CPU (tolerances per precision as
// DenseOnEveryPrecision's), and in the fused blocks against version 2 on the GPU: a max-pool's
// gradient goes to the largest value of each window, which tf32 or bf16 rounding can move to
// another element than the CPU's fp32 picks (one such window in 4096 moved 2.6 % of dx's norm).
TEST(EngineCuda, PipelinedConvMatchesTheCpuAndVersion2) {
  CU3D_REQUIRE_GPU();
  Generator gen(9);
  const Tensor x = rand({2, 4, 8, 8, 64}, gen), w = rand({64, 3, 3, 3, 64}, gen);
  const Tensor b = rand({64}, gen), gamma = rand({64}, gen), beta = rand({64}, gen);
  const Conv3dParams same{.padding = Padding::same};
  const Pool3dParams pool{.window = {2, 2, 2}, .stride = {2, 2, 2}};
  const LayerNormParams norm{.variant = LayerNormVariant::per_sample};
  const ComputeOptions saved = compute_options();
  use_version3_alone();
  for (auto [precision, tolerance] : {std::pair{Precision::tf32, 3e-3}, {Precision::bf16, 2e-2}}) {
    compute_options().precision = precision;
    compute_options().pipelined_conv = true;
    SCOPED_TRACE(to_string(precision));
    ASSERT_TRUE(cuda::conv3d_fwd_pipelined_supports(
        Conv3dShape::make(2, {4, 8, 8}, 64, 64, {3, 3, 3}, {1, 1, 1}, Padding::same), precision));
    expect_devices_agree(
        "conv3d", [&](auto& in) { return conv3d(in[0], in[1], in[2], same); }, {x, w, b}, {0, 1, 2},
        tolerance);
    // Both versions round the same operands and accumulate in fp32: only the order of bwd-data's
    // sums differs (an argmax moved by rounding would show as 1e-2).
    constexpr double kVersionTolerance = 1e-4;
    expect_conv_versions_agree(
        "conv3d_bias_relu_maxpool",
        [&](auto& in) { return conv3d_bias_relu_maxpool(in[0], in[1], in[2], same, pool); },
        {x, w, b}, kVersionTolerance);
    expect_conv_versions_agree(
        "conv3d_bias_layernorm_relu_maxpool",
        [&](auto& in) {
          return conv3d_bias_layernorm_relu_maxpool(in[0], in[1], in[2], in[3], in[4], same, norm,
                                                    pool);
        },
        {x, w, b, gamma, beta}, kVersionTolerance);
  }
  compute_options() = saved;
}

// A conv kernel setting (`configure(true)`) against `configure(false)`, through the engine in
// the current precision, on 64 -> `filters` channels: the conv, the training block with a pool
// whose windows do not tile the output (z stored by the conv's epilogue), and with `layer_norm`
// the layer-norm block (the statistics in the epilogue), to `tolerance` relative.
void expect_blocks_agree(uint64_t seed, const std::function<void(bool)>& configure, bool layer_norm,
                         double tolerance, int64_t filters = 128) {
  Generator gen(seed);
  const Tensor x = rand({2, 4, 8, 8, 64}, gen), w = rand({filters, 3, 3, 3, 64}, gen);
  const Tensor b = rand({filters}, gen), gamma = rand({filters}, gen), beta = rand({filters}, gen);
  const Conv3dParams same{.padding = Padding::same};
  const Pool3dParams pool{
      .window = {2, 2, 2}, .stride = {2, 2, 2}, .padding = Padding::explicit_, .pad = {0, 1, 1}};
  const Pool3dParams tiling_pool{.window = {2, 2, 2}, .stride = {2, 2, 2}};
  const LayerNormParams norm{.variant = LayerNormVariant::per_sample};
  expect_conv_settings_agree(
      "conv3d", [&](auto& in) { return conv3d(in[0], in[1], in[2], same); }, {x, w, b}, tolerance,
      configure);
  expect_conv_settings_agree(
      "conv3d_bias_relu_maxpool",
      [&](auto& in) { return conv3d_bias_relu_maxpool(in[0], in[1], in[2], same, pool); },
      {x, w, b}, tolerance, configure);
  if (layer_norm)
    expect_conv_settings_agree(
        "conv3d_bias_layernorm_relu_maxpool",
        [&](auto& in) {
          return conv3d_bias_layernorm_relu_maxpool(in[0], in[1], in[2], in[3], in[4], same, norm,
                                                    tiling_pool);
        },
        {x, w, b, gamma, beta}, tolerance, configure);
}

// expect_blocks_agree on top of version 3 alone (use_version3_alone), in tf32 and bf16. Both
// settings multiply the same operands: the forwards agree bit for bit (version 4) or to fp32
// rounding (version 5's sums inside each wgmma, ~1e-7), the gradients by fp32 summation order.
// A max-pool's gradient follows its window's argmax, which moves only when two of a window's
// values come within that rounding (~1e-6 chance per window: ~0.5 % for the 4096 windows here);
// 1e-4 sees a moved one (2.6 % of dx).
void expect_setting_matches_version3(uint64_t seed, const std::function<void(bool)>& configure,
                                     bool layer_norm) {
  const ComputeOptions saved = compute_options();
  use_version3_alone();
  for (Precision precision : {Precision::tf32, Precision::bf16}) {
    compute_options().precision = precision;
    SCOPED_TRACE(to_string(precision));
    expect_blocks_agree(seed, configure, layer_norm, 1e-4);
  }
  compute_options() = saved;
}

// The kernels written after the last GPU run: version 4 of the forward and bwd-data (wide_conv)
// with bwd-filter's version 3 (pipelined_bwd_filter; it takes c = 64 in bf16). Version 4 leaves
// the layer-norm statistics to version 3.
TEST(EngineCuda, NewConvKernelsMatchVersion3) {
  CU3D_REQUIRE_GPU();
  expect_setting_matches_version3(
      10,
      [](bool on) {
        compute_options().wide_conv = on;
        compute_options().pipelined_bwd_filter = on;
      },
      false);
}

// bwd-filter's version 3 in tf32 (tf32_pipelined_bwd_filter, session 19: its fragments loaded
// from shared memory one value at a time), every block, against version 2's bwd-filter; the
// forward and bwd-data on version 3 either way.
TEST(EngineCuda, Tf32PipelinedBwdFilterMatchesVersion2) {
  CU3D_REQUIRE_GPU();
  const ComputeOptions saved = compute_options();
  use_version3_alone();
  compute_options().precision = Precision::tf32;
  compute_options().pipelined_bwd_filter = true;
  expect_blocks_agree(
      19, [](bool on) { compute_options().tf32_pipelined_bwd_filter = on; }, true, 1e-4);
  compute_options() = saved;
}

// Version 5 of the forward and bwd-data (wgmma_conv), every block; skipped where it cannot run
// (it would fall back to version 3 and compare it with itself).
TEST(EngineCuda, WgmmaConvMatchesVersion3) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  expect_setting_matches_version3(
      12, [](bool on) { compute_options().wgmma_conv = on; }, true);
}

// Version 6 (wgmma_ws_conv: version 5 warp-specialized), every block, against version 5.
TEST(EngineCuda, WgmmaWsConvMatchesVersion5) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  expect_setting_matches_version3(
      13,
      [](bool on) {
        compute_options().wgmma_conv = true;
        compute_options().wgmma_ws_conv = on;
      },
      true);
}

// Version 7 (tma_conv: version 6 fed by the TMA; the default since session 14), every block,
// against version 5. Version 7 must take the blocks' conv (stride 1, "same" padding), or this
// would compare version 5 with itself.
TEST(EngineCuda, TmaConvMatchesVersion5) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  for (Precision p : {Precision::tf32, Precision::bf16})
    ASSERT_TRUE(cuda::conv3d_fwd_wgmma_tma_supports(
        Conv3dShape::make(2, {4, 8, 8}, 64, 128, {3, 3, 3}, {1, 1, 1}, Padding::same), p))
        << to_string(p);
  expect_setting_matches_version3(
      14,
      [](bool on) {
        compute_options().wgmma_conv = true;
        compute_options().tma_conv = on;
      },
      true);
}

// Version 8 (cluster_conv: version 7 in clusters of two blocks), every block, against version 7,
// on k = 128 (the clusters share the B tile) and k = 256 (two N tiles: they share A).
TEST(EngineCuda, ClusterConvMatchesVersion7) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const ComputeOptions saved = compute_options();
  use_version3_alone();
  compute_options().wgmma_conv = compute_options().tma_conv = true;
  for (int64_t filters : {128, 256})
    for (Precision precision : {Precision::tf32, Precision::bf16}) {
      ASSERT_TRUE(cuda::conv3d_fwd_wgmma_cluster_supports(
          Conv3dShape::make(2, {4, 8, 8}, 64, int(filters), {3, 3, 3}, {1, 1, 1}, Padding::same),
          precision));
      compute_options().precision = precision;
      SCOPED_TRACE(std::string(to_string(precision)) + ", k " + std::to_string(filters));
      expect_blocks_agree(
          16, [](bool on) { compute_options().cluster_conv = on; }, true, 1e-4, filters);
    }
  compute_options() = saved;
}

// fp32 on the tensor cores (fp32_tensor_cores: three tf32 products on version 7, the default
// kernel) against version 2's FFMA, every block, forward and backward: both within a few 1e-7
// of the exact sums (tests/emulation/conv3d_api_test.cpp), so 1e-5 apart, where tf32's rounding
// alone would show as 3e-4 and a moved argmax as 1e-2.
TEST(EngineCuda, Fp32TensorCoresMatchVersion2) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const ComputeOptions saved = compute_options();
  compute_options() = ComputeOptions{};
  compute_options().backends = OpBackends::all(Backend::cu3d);
  compute_options().precision = Precision::fp32;
  ASSERT_TRUE(cuda::conv3d_fwd_wgmma_tma_supports(
      Conv3dShape::make(2, {4, 8, 8}, 64, 128, {3, 3, 3}, {1, 1, 1}, Padding::same),
      Precision::fp32));
  expect_blocks_agree(
      15, [](bool on) { compute_options().fp32_tensor_cores = on; }, true, 1e-5);
  compute_options() = saved;
}

// fp32 on version 3's FFMA form (fp32_pipelined_conv) against version 2, every block, forward and
// backward: the stores are the same sums in the same order
// (ConvPipelined.MatchesVersion2BitForBit), the layer-norm statistics add in another order (1e-7
// apart), so 1e-5 as for 3xTF32, where a lost stage of r would move outputs by whole percents.
TEST(EngineCuda, Fp32PipelinedConvMatchesVersion2) {
  CU3D_REQUIRE_GPU();
  const ComputeOptions saved = compute_options();
  compute_options() = ComputeOptions{};
  compute_options().backends = OpBackends::all(Backend::cu3d);
  compute_options().precision = Precision::fp32;
  ASSERT_TRUE(cuda::conv3d_fwd_pipelined_ffma_supports(
      Conv3dShape::make(2, {4, 8, 8}, 64, 128, {3, 3, 3}, {1, 1, 1}, Padding::same),
      Precision::fp32));
  expect_blocks_agree(
      20, [](bool on) { compute_options().fp32_pipelined_conv = on; }, true, 1e-5);
  compute_options() = saved;
}

// Sequential on CUDA with fusion on and off: the same loss and gradients, per backend.
TEST(EngineCuda, SequentialFusedMatchesUnfused) {
  CU3D_REQUIRE_GPU();
  Generator gen(7);
  auto net = toy_3d_cnn(testing::kToyFrames, testing::kToySize, toy::kDirections, gen);
  net->to(Device::cuda());
  const toy::MotionBatch batch =
      toy::make_motion_batch(8, testing::kToyFrames, testing::kToySize, gen);
  const Tensor clips = batch.clips.to(Device::cuda()), labels = batch.labels.to(Device::cuda());
  const ComputeOptions saved = compute_options();
  auto loss_and_grads = [&](bool fuse) {
    compute_options().fuse = fuse;
    net->zero_grad();
    const Tensor loss = softmax_cross_entropy((*net)(clips), labels);
    autograd::backward(loss);
    std::vector<Tensor> out = {loss.clone()};
    for (const auto& [name, p] : net->named_parameters())
      out.push_back(p.grad().clone());
    return out;
  };
  for (Backend backend : {Backend::cu3d, Backend::cudnn}) {
    compute_options().backends = OpBackends::all(backend);
    SCOPED_TRACE(to_string(backend));
    const std::vector<Tensor> fused = loss_and_grads(true), separate = loss_and_grads(false);
    for (size_t i = 0; i < fused.size(); ++i)
      EXPECT_LT(relative_error(fused[i], separate[i]), 1e-5) << "loss, then each gradient: " << i;
  }
  compute_options() = saved;
}

TEST(EngineCuda, DenseOnEveryPrecision) {
  CU3D_REQUIRE_GPU();
  Generator gen(5);
  const Tensor x = rand({7, 300}, gen), w = rand({13, 300}, gen), b = rand({13}, gen);
  const ComputeOptions saved = compute_options();
  // Tolerances per dtype of the matrix operands (METHOD.md's usual ranges).
  for (auto [precision, tolerance] :
       {std::pair{Precision::fp32, 1e-5}, {Precision::tf32, 3e-3}, {Precision::bf16, 2e-2}}) {
    compute_options().precision = precision;
    SCOPED_TRACE(to_string(precision));
    expect_devices_agree(
        "dense", [](auto& in) { return dense(in[0], in[1], in[2]); }, {x, w, b}, {0, 1, 2},
        tolerance);
  }
  compute_options() = saved;
}

TEST(EngineCuda, OptimizersMatchTheCpu) {
  CU3D_REQUIRE_GPU();
  Generator gen(4);
  for (bool adam : {true, false}) {
    SCOPED_TRACE(adam ? "Adam" : "SGD");
    Tensor p_cpu = rand({37, 5}, gen), q_cpu = rand({3}, gen);
    Tensor p_gpu = p_cpu.to(Device::cuda()), q_gpu = q_cpu.to(Device::cuda());
    for (Tensor* t : {&p_cpu, &q_cpu, &p_gpu, &q_gpu})
      t->set_requires_grad(true);
    auto make = [adam](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
      if (adam) return std::make_unique<Adam>(params, AdamOptions{.lr = 0.01, .weight_decay = 0.1});
      return std::make_unique<SGD>(params, SgdOptions{.lr = 0.1, .momentum = 0.9});
    };
    auto opt_cpu = make({p_cpu, q_cpu}), opt_gpu = make({p_gpu, q_gpu});
    for (int step = 0; step < 3; ++step) {
      const Tensor g1 = rand({37, 5}, gen), g2 = rand({3}, gen);
      p_cpu.set_grad(g1);
      q_cpu.set_grad(g2);
      p_gpu.set_grad(g1.to(Device::cuda()));
      q_gpu.set_grad(g2.to(Device::cuda()));
      opt_cpu->step();
      opt_gpu->step();
    }
    EXPECT_LT(relative_error(p_gpu, p_cpu), 1e-6);
    EXPECT_LT(relative_error(q_gpu, q_cpu), 1e-6);
  }
}

// The whole chain on the GPU: the toy 3D CNN, moved to CUDA, learns the direction of motion.
TEST(EngineCuda, Small3dCnnLearnsOnTheGpu) {
  CU3D_REQUIRE_GPU();
  Generator gen(2024);
  auto net = toy_3d_cnn(testing::kToyFrames, testing::kToySize, toy::kDirections, gen);
  net->to(Device::cuda());
  for (const auto& [name, p] : net->named_parameters())
    EXPECT_EQ(p.device(), Device::cuda());
  Adam adam(net->named_parameters(), AdamOptions{.lr = 3e-3});
  for (int step = 0; step < 150; ++step) {
    const toy::MotionBatch batch =
        toy::make_motion_batch(32, testing::kToyFrames, testing::kToySize, gen);
    adam.zero_grad();
    const Tensor loss = softmax_cross_entropy((*net)(batch.clips.to(Device::cuda())),
                                              batch.labels.to(Device::cuda()));
    autograd::backward(loss);
    adam.step();
  }
  const toy::MotionBatch test =
      toy::make_motion_batch(256, testing::kToyFrames, testing::kToySize, gen);
  EXPECT_GE(top1_accuracy(*net, test.clips.to(Device::cuda()), test.labels), 0.9);
}

}  // namespace
}  // namespace cu3d
