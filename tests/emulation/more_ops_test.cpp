// More memory-bound CUDA ops through the block emulator, as memory_bound_test.cpp runs the others:
// the multi-tensor Adam/AdamW step and SGD, softmax forward and backward, batch norm (training,
// eval, backward), the activations and dropout, the elementwise ops and their sum, and the
// fp32/bf16/tf32 casts; the real .cu files, host code included. Each against its CPU reference
// (kernels/cpu) in double where that is templated, bit for bit where the op is exact (ReLU, leaky
// ReLU, dropout, whose Philox mask the CPU draws from the same kernels/philox.h) and, for the
// casts, against the rounding written out here, with NaNs and infinities as an H100 converts them;
// in three schedules that must agree bit for bit, with no emulator fault, on poisoned outputs with
// guards around them.
//
// What this cannot show: speed and the memory system (the GPU suite and the benchmarks do), and
// the device's own arithmetic: expf, sqrtf and the fused multiply-adds nvcc forms are the host's
// here, so the tolerances cover ulp-level differences, not the device's exact bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "block.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/sgd.cuh"
#include "kernels/cuda/softmax.cuh"
#include "kernels/error.h"
#include "test_buffers.h"

namespace cu3d {
namespace {

using namespace emu_test;  // Buffer, in_every_schedule and the comparisons

std::mt19937 rng(2027);
float uniform(float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}
std::vector<float> uniform_values(size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& f : v)
    f = uniform(lo, hi);
  return v;
}
std::vector<double> to_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// An in/out array: poisoned guards around `values`.
void fill(Buffer& b, const std::vector<float>& values) {
  b.poison_all();
  std::copy(values.begin(), values.end(), b.data());
}

// ‖after − want‖ / ‖want − before‖: an in-place update's error relative to the update's size,
// which a relative error of the updated values (near `before`) would hide.
double update_error(const std::vector<float>& after, const std::vector<float>& before,
                    const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    num += (double(after[i]) - want[i]) * (double(after[i]) - want[i]);
    den += (want[i] - double(before[i])) * (want[i] - double(before[i]));
  }
  return std::sqrt(num / den);  // NaN (a failure) when `after` holds poison
}

// ---- Adam / AdamW -------------------------------------------------------------------------------

constexpr int kAdamSteps = 3;
// The fp32 step holds beta2 = 0.999 as 0.99900001, so 1 - beta2 is 1.3e-5 short of 0.001, while
// the bias corrections take the exact beta2 (as the CPU's fp32 step does): v and the updates
// carry ~1e-5 of that against the double reference. A bug costs far more.
constexpr double kAdamTolerance = 5e-5;

// Around the kernel's blocks of 2048 elements, a bias of one, an empty tensor, and 34 tensors in
// all: two launches (32 tensors at most per launch).
std::vector<int64_t> adam_sizes() {
  std::vector<int64_t> sizes = {2049, 1, 0, 3, 2048, 4099, 5, 2047};
  for (int k = 0; sizes.size() < 34; ++k)
    sizes.push_back(1 + (7 * k) % 40);
  return sizes;
}

struct AdamCase {
  const char* name;
  bool decoupled;
};

const AdamCase kAdamCases[] = {{"Adam_L2", false}, {"AdamW", true}};

class AdamEmulation : public ::testing::TestWithParam<AdamCase> {};

TEST_P(AdamEmulation, EveryTensorMatchesTheCpuOverSeveralSteps) {
  cuda::AdamConfig config;
  config.lr = 1e-2, config.weight_decay = 0.1, config.decoupled = GetParam().decoupled;
  const std::vector<int64_t> sizes = adam_sizes();
  const size_t count = sizes.size();
  std::vector<std::vector<float>> param0(count);
  std::vector<std::vector<std::vector<float>>> grads(kAdamSteps, param0);
  for (size_t k = 0; k < count; ++k) {
    param0[k] = uniform_values(sizes[k], -1, 1);
    for (auto& step_grads : grads)
      step_grads[k] = uniform_values(sizes[k], -1, 1);
  }
  std::vector<std::vector<double>> param_ref(count), m_ref(count), v_ref(count);
  for (size_t k = 0; k < count; ++k) {
    param_ref[k] = to_double(param0[k]);
    m_ref[k].assign(sizes[k], 0.0), v_ref[k].assign(sizes[k], 0.0);
    for (int step = 1; step <= kAdamSteps; ++step) {
      const std::vector<double> g = to_double(grads[step - 1][k]);
      cpu::adam_step<double>(sizes[k], param_ref[k].data(), g.data(), m_ref[k].data(),
                             v_ref[k].data(), config.lr, config.beta1, config.beta2, config.eps,
                             config.weight_decay, config.decoupled, step);
    }
  }

  // Every other tensor off its 16-byte alignment.
  std::vector<Buffer> param, m, v;
  for (size_t k = 0; k < count; ++k) {
    param.emplace_back(sizes[k], k % 2);
    m.emplace_back(sizes[k], k % 2);
    v.emplace_back(sizes[k], (k + 1) % 2);
  }
  const auto out = in_every_schedule([&] {
    for (size_t k = 0; k < count; ++k) {
      fill(param[k], param0[k]);
      fill(m[k], std::vector<float>(sizes[k], 0.f));
      fill(v[k], std::vector<float>(sizes[k], 0.f));
    }
    for (int step = 1; step <= kAdamSteps; ++step) {
      std::vector<cuda::AdamTensor> tensors;
      for (size_t k = 0; k < count; ++k)
        tensors.push_back(
            {param[k].data(), grads[step - 1][k].data(), m[k].data(), v[k].data(), sizes[k]});
      cuda::adam_step(tensors, config, step, nullptr);
    }
    std::vector<std::vector<float>> values;
    for (size_t k = 0; k < count; ++k) {
      EXPECT_TRUE(param[k].guards_intact() && m[k].guards_intact() && v[k].guards_intact())
          << "wrote outside tensor " << k;
      values.insert(values.end(), {param[k].values(), m[k].values(), v[k].values()});
    }
    return values;
  });
  for (size_t k = 0; k < count; ++k) {
    if (sizes[k] == 0) continue;
    SCOPED_TRACE("tensor " + std::to_string(k) + " of " + std::to_string(sizes[k]));
    EXPECT_LT(update_error(out[3 * k], param0[k], param_ref[k]), kAdamTolerance) << "param";
    EXPECT_LT(relative_error(out[3 * k + 1], m_ref[k]), kAdamTolerance) << "m";
    EXPECT_LT(relative_error(out[3 * k + 2], v_ref[k]), kAdamTolerance) << "v";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, AdamEmulation, ::testing::ValuesIn(kAdamCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- SGD ----------------------------------------------------------------------------------------

struct SgdCase {
  const char* name;
  double momentum, weight_decay;
  bool nesterov;
  int multiprocessors;  // 1: the grid-stride loop goes round
};

const SgdCase kSgdCases[] = {
    {"Plain", 0.0, 0.0, false, 132},
    {"Momentum_decay", 0.9, 0.01, false, 132},
    {"Nesterov_one_sm", 0.9, 0.01, true, 1},
};

class SgdEmulation : public ::testing::TestWithParam<SgdCase> {};

TEST_P(SgdEmulation, MatchesTheCpuOverSeveralSteps) {
  const SgdCase& sc = GetParam();
  const int64_t n = 5001;
  const double lr = 1e-2;
  const int steps = 3;
  const std::vector<float> param0 = uniform_values(n, -1, 1);
  std::vector<std::vector<float>> grads(steps);
  for (auto& g : grads)
    g = uniform_values(n, -1, 1);
  std::vector<double> param_ref = to_double(param0), buf_ref(n, 0.0);
  for (const auto& g : grads)
    cpu::sgd_step<double>(n, param_ref.data(), to_double(g).data(), buf_ref.data(), lr, sc.momentum,
                          sc.weight_decay, sc.nesterov);

  const bool has_buf = sc.momentum != 0;
  emu::set_multiprocessors(sc.multiprocessors);
  Buffer param(n, 1), buf(n);
  const auto out = in_every_schedule([&] {
    fill(param, param0);
    fill(buf, std::vector<float>(n, 0.f));
    for (const auto& g : grads)
      cuda::sgd_step(n, param.data(), g.data(), has_buf ? buf.data() : nullptr, lr, sc.momentum,
                     sc.weight_decay, sc.nesterov, nullptr);
    EXPECT_TRUE(param.guards_intact() && buf.guards_intact()) << "wrote outside";
    return std::vector<std::vector<float>>{param.values(), buf.values()};
  });
  emu::set_multiprocessors(132);
  EXPECT_LT(update_error(out[0], param0, param_ref), 3e-5) << "param";
  if (has_buf) {
    EXPECT_LT(relative_error(out[1], buf_ref), 1e-6) << "momentum buffer";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SgdEmulation, ::testing::ValuesIn(kSgdCases),
                         [](const auto& info) { return std::string(info.param.name); });

// What the CPU's step refuses, the CUDA step refuses too, with the same message, before any launch.
TEST(SgdEmulationChecks, RefusesWhatTheCpuRefuses) {
  std::vector<float> param(8, 1.f), grad(8, 0.5f);
  auto message = [](const std::function<void()>& call) {
    try {
      call();
    } catch (const cu3d::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  struct Refused {
    double momentum;
    bool nesterov;
  };
  for (const Refused& r : {Refused{0.9, false}, Refused{0.0, true}}) {
    const double momentum = r.momentum;
    const bool nesterov = r.nesterov;
    const std::string gpu = message([&] {
      cuda::sgd_step(8, param.data(), grad.data(), nullptr, 0.1, momentum, 0.0, nesterov, nullptr);
    });
    const std::string cpu = message([&] {
      cpu::sgd_step<float>(8, param.data(), grad.data(), nullptr, 0.1, momentum, 0.0, nesterov);
    });
    EXPECT_NE(gpu, "no error");
    EXPECT_EQ(gpu, cpu);
  }
  EXPECT_EQ(param, std::vector<float>(8, 1.f)) << "a refused step changed the parameters";
}

// ---- softmax ------------------------------------------------------------------------------------

struct SoftmaxCase {
  const char* name;
  cpu::SoftmaxShape s;
};

// Rows of fewer and more columns than a warp's 32 lanes, and fewer and more rows than a block's
// 8 warps.
const SoftmaxCase kSoftmaxCases[] = {
    {"Rows1_cols1", {1, 1}},         {"Rows7_cols31", {7, 31}},     {"Rows8_cols32", {8, 32}},
    {"Rows9_cols33", {9, 33}},       {"Rows33_cols100", {33, 100}}, {"Rows300_cols5", {300, 5}},
    {"Rows20_cols1000", {20, 1000}},
};

class SoftmaxEmulation : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxEmulation, ForwardAndBackwardMatchTheCpu) {
  const cpu::SoftmaxShape s = GetParam().s;
  std::vector<float> x(s.size());
  for (int64_t r = 0; r < s.rows; ++r) {  // rows far from 0: the max must be subtracted
    const float offset = uniform(-60, 60);
    for (int j = 0; j < s.cols; ++j)
      x[r * s.cols + j] = offset + uniform(-4, 4);
  }
  const std::vector<float> dy = uniform_values(s.size(), -1, 1);
  std::vector<double> y_ref(s.size()), dx_ref(s.size());
  cpu::softmax_fwd<double>(s, to_double(x).data(), y_ref.data());
  // The backward's input: the reference output in fp32, not the emulated forward's.
  const std::vector<float> y_in(y_ref.begin(), y_ref.end());
  cpu::softmax_bwd<double>(s, to_double(y_in).data(), to_double(dy).data(), dx_ref.data());

  Buffer y(s.size()), dx(s.size());
  const auto out = in_every_schedule([&] {
    y.poison_all();
    dx.poison_all();
    cuda::softmax_fwd(s, x.data(), y.data(), nullptr);
    cuda::softmax_bwd(s, y_in.data(), dy.data(), dx.data(), nullptr);
    EXPECT_TRUE(y.guards_intact() && dx.guards_intact()) << "wrote outside y or dx";
    return std::vector<std::vector<float>>{y.values(), dx.values()};
  });
  EXPECT_LT(relative_error(out[0], y_ref), 1e-6) << "y";
  EXPECT_LT(relative_error(out[1], dx_ref), 1e-5) << "dx";
}

INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxEmulation, ::testing::ValuesIn(kSoftmaxCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- batch norm ---------------------------------------------------------------------------------

struct BatchNormCase {
  const char* name;
  cpu::BatchNormShape s;
  int multiprocessors = 132;  // 1: the elementwise passes' threads take several rows each
};

// One row chunk (under 1024 rows) and several, the last one short; channels in one and in
// several blocks of 32, the last one partial; whole float4s of channels (c 40, 64) and not;
// on one SM the elementwise passes' row lanes go round (c 64: 256 lanes of rows; c 33: 124).
const BatchNormCase kBatchNormCases[] = {
    {"Rows2_c1", {2, 1}},
    {"Rows37_c5", {37, 5}},
    {"Rows600_c33", {600, 33}},
    {"Rows1100_c40_two_chunks", {1100, 40}},
    {"Rows2601_c3_five_chunks", {2601, 3}},
    {"Rows1100_c64_one_sm", {1100, 64}, 1},
    {"Rows600_c33_one_sm", {600, 33}, 1},
};

constexpr float kBatchNormEps = 1e-5f, kBatchNormMomentum = 0.1f;

struct BatchNormInputs {
  std::vector<float> x, gamma, beta, running_mean, running_var, dy;
  // The backward passes' saved statistics (training, eval): the references' in fp32, not the
  // emulated forward's.
  std::vector<float> mean, rstd, mean_eval, rstd_eval;
};

// Channels of their own mean (far from 0: the centred variance matters) and spread.
BatchNormInputs batch_norm_inputs(const cpu::BatchNormShape& s) {
  BatchNormInputs in;
  in.x.resize(s.size());
  for (int ch = 0; ch < s.c; ++ch) {
    const float mean = uniform(-20, 20), spread = uniform(0.5f, 2);
    for (int64_t r = 0; r < s.rows; ++r)
      in.x[r * s.c + ch] = mean + spread * uniform(-1, 1);
  }
  in.gamma = uniform_values(s.c, 0.5f, 1.5f);
  in.beta = uniform_values(s.c, -0.5f, 0.5f);
  in.running_mean = uniform_values(s.c, -1, 1);
  in.running_var = uniform_values(s.c, 0.5f, 2);
  in.dy = uniform_values(s.size(), -1, 1);
  return in;
}

// Every output of training forward, eval forward and the backward with batch and with running
// statistics: Buffers for the emulated run, double vectors for the references.
template <class Array>
struct BatchNormOutputs {
  Array y, mean, rstd, running_mean, running_var;  // training
  Array y_eval, mean_eval, rstd_eval;              // eval
  Array dx, dgamma, dbeta;                         // batch statistics
  Array dx_eval, dgamma_eval, dbeta_eval;          // running statistics
  explicit BatchNormOutputs(const cpu::BatchNormShape& s)
      : y(s.size()),
        mean(s.c),
        rstd(s.c),
        running_mean(s.c),
        running_var(s.c),
        y_eval(s.size()),
        mean_eval(s.c),
        rstd_eval(s.c),
        dx(s.size()),
        dgamma(s.c),
        dbeta(s.c),
        dx_eval(s.size()),
        dgamma_eval(s.c),
        dbeta_eval(s.c) {}
  std::vector<Array*> all() {
    return {&y,         &mean, &rstd,   &running_mean, &running_var, &y_eval,      &mean_eval,
            &rstd_eval, &dx,   &dgamma, &dbeta,        &dx_eval,     &dgamma_eval, &dbeta_eval};
  }
};
const char* const kBatchNormOutputNames[] = {
    "y",         "mean", "rstd",   "running_mean", "running_var", "y_eval",      "mean_eval",
    "rstd_eval", "dx",   "dgamma", "dbeta",        "dx_eval",     "dgamma_eval", "dbeta_eval"};

std::vector<float> to_float(const std::vector<double>& v) {
  return {v.begin(), v.end()};
}

// The naive CPU references in double; sets the inputs' saved statistics from them.
BatchNormOutputs<std::vector<double>> batch_norm_references(const cpu::BatchNormShape& s,
                                                            BatchNormInputs& in) {
  BatchNormOutputs<std::vector<double>> want(s);
  const std::vector<double> x = to_double(in.x), gamma = to_double(in.gamma),
                            beta = to_double(in.beta), dy = to_double(in.dy);
  want.running_mean = to_double(in.running_mean);
  want.running_var = to_double(in.running_var);
  // Eval first: training updates the running statistics in place.
  cpu::batch_norm_fwd_eval<double>(s, x.data(), gamma.data(), beta.data(), want.running_mean.data(),
                                   want.running_var.data(), kBatchNormEps, want.y_eval.data(),
                                   want.mean_eval.data(), want.rstd_eval.data());
  cpu::batch_norm_fwd_train_naive<double>(
      s, x.data(), gamma.data(), beta.data(), kBatchNormEps, kBatchNormMomentum, want.y.data(),
      want.mean.data(), want.rstd.data(), want.running_mean.data(), want.running_var.data());
  in.mean = to_float(want.mean), in.rstd = to_float(want.rstd);
  in.mean_eval = to_float(want.mean_eval), in.rstd_eval = to_float(want.rstd_eval);
  cpu::batch_norm_bwd_naive<double>(s, x.data(), gamma.data(), to_double(in.mean).data(),
                                    to_double(in.rstd).data(), dy.data(), true, want.dx.data(),
                                    want.dgamma.data(), want.dbeta.data());
  cpu::batch_norm_bwd_naive<double>(
      s, x.data(), gamma.data(), to_double(in.mean_eval).data(), to_double(in.rstd_eval).data(),
      dy.data(), false, want.dx_eval.data(), want.dgamma_eval.data(), want.dbeta_eval.data());
  return want;
}

// The four emulated calls on poisoned outputs, the running statistics starting from the inputs'.
std::vector<std::vector<float>> run_batch_norm(const cpu::BatchNormShape& s,
                                               const BatchNormInputs& in,
                                               BatchNormOutputs<Buffer>& got) {
  for (Buffer* b : got.all())
    b->poison_all();
  fill(got.running_mean, in.running_mean);
  fill(got.running_var, in.running_var);
  cuda::batch_norm_fwd_train(s, in.x.data(), in.gamma.data(), in.beta.data(), kBatchNormEps,
                             kBatchNormMomentum, got.y.data(), got.mean.data(), got.rstd.data(),
                             got.running_mean.data(), got.running_var.data(), nullptr);
  cuda::batch_norm_fwd_eval(s, in.x.data(), in.gamma.data(), in.beta.data(), in.running_mean.data(),
                            in.running_var.data(), kBatchNormEps, got.y_eval.data(),
                            got.mean_eval.data(), got.rstd_eval.data(), nullptr);
  cuda::batch_norm_bwd(s, in.x.data(), in.gamma.data(), in.mean.data(), in.rstd.data(),
                       in.dy.data(), true, got.dx.data(), got.dgamma.data(), got.dbeta.data(),
                       nullptr);
  cuda::batch_norm_bwd(s, in.x.data(), in.gamma.data(), in.mean_eval.data(), in.rstd_eval.data(),
                       in.dy.data(), false, got.dx_eval.data(), got.dgamma_eval.data(),
                       got.dbeta_eval.data(), nullptr);
  std::vector<std::vector<float>> values;
  for (Buffer* b : got.all()) {
    EXPECT_TRUE(b->guards_intact()) << "wrote outside an output";
    values.push_back(b->values());
  }
  return values;
}

class BatchNormEmulation : public ::testing::TestWithParam<BatchNormCase> {};

TEST_P(BatchNormEmulation, TrainEvalAndBackwardMatchTheCpu) {
  const cpu::BatchNormShape s = GetParam().s;
  BatchNormInputs in = batch_norm_inputs(s);
  BatchNormOutputs<std::vector<double>> want = batch_norm_references(s, in);
  BatchNormOutputs<Buffer> got(s);
  emu::set_multiprocessors(GetParam().multiprocessors);
  const auto out = in_every_schedule([&] { return run_batch_norm(s, in, got); });
  emu::set_multiprocessors(132);
  const std::vector<std::vector<double>*> wanted = want.all();
  for (size_t k = 0; k < wanted.size(); ++k)
    EXPECT_LT(relative_error(out[k], *wanted[k]), 1e-5) << kBatchNormOutputNames[k];
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormEmulation, ::testing::ValuesIn(kBatchNormCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- activations and dropout --------------------------------------------------------------------

struct ActivationCase {
  const char* name;
  int64_t n;
  int offset;
  int multiprocessors;  // 1: the grid-stride loops go round
  double dropout_p;
};

// Counts that are not multiples of 4 leave dropout's last Philox block partly used.
const ActivationCase kActivationCases[] = {
    {"N5", 5, 0, 132, 0.9},
    {"N4098_misaligned", 4098, 1, 132, 0.3},
    {"N4099", 4099, 0, 132, 0.0},
    {"N9001_one_sm", 9001, 0, 1, 0.5},
};

// Uniform values with zeros, infinities and subnormals at the front.
std::vector<float> activation_inputs(int64_t n) {
  std::vector<float> x = uniform_values(n, -6, 6);
  const float specials[] = {0.f,
                            -0.f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            -100.f,
                            100.f};
  for (size_t i = 0; i < std::size(specials) && i < x.size(); ++i)
    x[i] = specials[i];
  return x;
}

// Writes one output of n floats.
using ElementwiseOp = std::function<void(float* out)>;

// Runs `ops` in every schedule, each on its own poisoned output with guards, on a device of the
// case's SMs.
std::vector<std::vector<float>> run_elementwise(const ActivationCase& ac,
                                                const std::vector<ElementwiseOp>& ops) {
  emu::set_multiprocessors(ac.multiprocessors);
  std::vector<Buffer> outputs(ops.size(), Buffer(ac.n, ac.offset));
  const auto out = in_every_schedule([&] {
    std::vector<std::vector<float>> values;
    for (size_t k = 0; k < ops.size(); ++k) {
      outputs[k].poison_all();
      ops[k](outputs[k].data());
      EXPECT_TRUE(outputs[k].guards_intact()) << "op " << k << " wrote outside its output";
      values.push_back(outputs[k].values());
    }
    return values;
  });
  emu::set_multiprocessors(132);
  return out;
}

class ActivationEmulation : public ::testing::TestWithParam<ActivationCase> {};

TEST_P(ActivationEmulation, ReluLeakyReluAndDropoutMatchTheCpuBitForBit) {
  const ActivationCase& ac = GetParam();
  const int64_t n = ac.n;
  const float alpha = 0.1f;
  const uint64_t seed = 0x0123456789abcdefull, offset = (uint64_t(1) << 33) + 5;
  const std::vector<float> x = activation_inputs(n), dy = uniform_values(n, -1, 1);
  // The backward passes take the CPU's forward outputs as y.
  std::vector<float> relu_y(n), relu_dx(n), leaky_y(n), leaky_dx(n), drop_y(n), drop_dx(n);
  cpu::relu_fwd<float>(n, x.data(), relu_y.data());
  cpu::relu_bwd<float>(n, relu_y.data(), dy.data(), relu_dx.data());
  cpu::leaky_relu_fwd<float>(n, x.data(), alpha, leaky_y.data());
  cpu::leaky_relu_bwd<float>(n, leaky_y.data(), alpha, dy.data(), leaky_dx.data());
  cpu::dropout_fwd<float>(n, x.data(), ac.dropout_p, seed, offset, drop_y.data());
  cpu::dropout_bwd<float>(n, dy.data(), ac.dropout_p, seed, offset, drop_dx.data());
  struct Exact {
    const char* name;
    const std::vector<float>& want;
    ElementwiseOp op;
  };
  const Exact exact[] = {
      {"relu y", relu_y, [&](float* y) { cuda::relu_fwd(n, x.data(), y, nullptr); }},
      {"relu dx", relu_dx,
       [&](float* dx) { cuda::relu_bwd(n, relu_y.data(), dy.data(), dx, nullptr); }},
      {"leaky relu y", leaky_y,
       [&](float* y) { cuda::leaky_relu_fwd(n, x.data(), alpha, y, nullptr); }},
      {"leaky relu dx", leaky_dx,
       [&](float* dx) { cuda::leaky_relu_bwd(n, leaky_y.data(), alpha, dy.data(), dx, nullptr); }},
      {"dropout y", drop_y,
       [&](float* y) { cuda::dropout_fwd(n, x.data(), ac.dropout_p, seed, offset, y, nullptr); }},
      {"dropout dx", drop_dx,
       [&](float* dx) {
         cuda::dropout_bwd(n, dy.data(), ac.dropout_p, seed, offset, dx, nullptr);
       }},
  };
  std::vector<ElementwiseOp> ops;
  for (const Exact& e : exact)
    ops.push_back(e.op);
  const auto out = run_elementwise(ac, ops);
  for (size_t k = 0; k < ops.size(); ++k)
    EXPECT_EQ(bit_mismatches(out[k], exact[k].want), 0) << exact[k].name;
}

TEST_P(ActivationEmulation, SigmoidMatchesTheCpu) {
  const int64_t n = GetParam().n;
  const std::vector<float> x = activation_inputs(n), dy = uniform_values(n, -1, 1);
  std::vector<float> y_in(n);  // the backward's input: the CPU's fp32 forward output
  cpu::sigmoid_fwd<float>(n, x.data(), y_in.data());
  std::vector<double> y_ref(n), dx_ref(n);
  cpu::sigmoid_fwd<double>(n, to_double(x).data(), y_ref.data());
  cpu::sigmoid_bwd<double>(n, to_double(y_in).data(), to_double(dy).data(), dx_ref.data());
  const auto out = run_elementwise(
      GetParam(), {[&](float* y) { cuda::sigmoid_fwd(n, x.data(), y, nullptr); },
                   [&](float* dx) { cuda::sigmoid_bwd(n, y_in.data(), dy.data(), dx, nullptr); }});
  EXPECT_LT(relative_error(out[0], y_ref), 1e-6) << "y";
  EXPECT_LT(relative_error(out[1], dx_ref), 1e-6) << "dx";
}

INSTANTIATE_TEST_SUITE_P(Sizes, ActivationEmulation, ::testing::ValuesIn(kActivationCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- casts --------------------------------------------------------------------------------------

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bool is_finite_bits(uint32_t u) {
  return (u & 0x7f800000u) != 0x7f800000u;
}

// The rounding of a finite fp32 to `kept` mantissa bits, by value rather than by bit tricks:
// the two candidates are x truncated toward zero and the next representable magnitude (one unit
// in the kept last place up, which is infinity past the largest finite value), and the nearer
// wins; a tie goes to the even candidate or away from zero. Every difference here is exact in
// double.
uint32_t round_mantissa(uint32_t u, int kept, bool ties_away) {
  const int dropped = 23 - kept;
  const uint32_t toward_zero = u & ~((1u << dropped) - 1);
  const uint32_t away = toward_zero + (1u << dropped);
  const int biased_exponent = std::max(int((u >> 23) & 0xff), 1);  // subnormals: as exponent 1
  const double unit = std::ldexp(1.0, biased_exponent - 127 - kept);
  const double magnitude = std::fabs(double(from_bits(u)));
  const double below = magnitude - std::fabs(double(from_bits(toward_zero)));
  const double above = unit - below;
  if (below != above) return below < above ? toward_zero : away;
  const bool toward_zero_even = ((toward_zero >> dropped) & 1u) == 0;
  return ties_away || !toward_zero_even ? away : toward_zero;
}

// Random bit patterns (every exponent: subnormals, infinities, NaNs of any payload) and the
// edge cases of both roundings: ties, one below and above them, the largest finite values.
std::vector<float> cast_inputs() {
  std::vector<float> x;
  std::uniform_int_distribution<uint32_t> any_bits;
  for (int i = 0; i < 4001; ++i)
    x.push_back(from_bits(any_bits(rng)));
  for (uint32_t high : {0x3f800000u, 0x3f810000u, 0xc0a30000u, 0x00010000u, 0x7f7f0000u})
    for (uint32_t low : {0x8000u, 0x7fffu, 0x8001u, 0x1000u, 0x3000u, 0x0fffu, 0x1001u, 0xffffu})
      x.push_back(from_bits(high | low));
  for (uint32_t u : {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
                     0x7f801000u, 0xffbfffffu, 0x7f7fffffu, 0x00000001u, 0x00001000u, 0x807fffffu})
    x.push_back(from_bits(u));
  return x;
}

TEST(CastEmulation, Fp32ToBf16RoundsToNearestEven) {
  const std::vector<float> x = cast_inputs();
  ASSERT_EQ(x.size() % 2, 1u) << "the last output's pad half word is part of the test";
  const size_t n = x.size();
  // Two bf16 to a float of the buffer; the odd count's last half word must stay poison.
  Buffer y((n + 1) / 2);
  const auto out = in_every_schedule([&] {
    y.poison_all();
    cuda::fp32_to_bf16(x.data(), reinterpret_cast<__nv_bfloat16*>(y.data()), int64_t(n), nullptr);
    EXPECT_TRUE(y.guards_intact()) << "wrote outside y";
    return std::vector<std::vector<float>>{y.values()};
  });
  std::vector<uint16_t> got(n + 1);
  std::memcpy(got.data(), out[0].data(), 2 * got.size());
  EXPECT_EQ(got[n], uint16_t(kPoison >> 16)) << "wrote past the last bf16";
  long bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = bits_of(x[i]);
    // Every NaN becomes 0x7fff, an infinity keeps its sign (as an H100 converts them).
    const uint16_t want = std::isnan(x[i])    ? 0x7fff
                          : is_finite_bits(u) ? round_mantissa(u, 7, false) >> 16
                                              : u >> 16;
    bad += got[i] != want;
    if (got[i] != want && bad <= 5)
      ADD_FAILURE() << std::hex << "fp32 " << u << " -> bf16 " << got[i] << ", want " << want;
  }
  EXPECT_EQ(bad, 0);
}

TEST(CastEmulation, Bf16ToFp32IsExactForEveryPattern) {
  std::vector<__nv_bfloat16> x(1 << 16);
  for (uint32_t b = 0; b < x.size(); ++b)
    x[b].bits = uint16_t(b);
  Buffer y(x.size(), 1);
  const auto out = in_every_schedule([&] {
    y.poison_all();
    cuda::bf16_to_fp32(x.data(), y.data(), int64_t(x.size()), nullptr);
    EXPECT_TRUE(y.guards_intact()) << "wrote outside y";
    return std::vector<std::vector<float>>{y.values()};
  });
  long bad = 0;
  for (uint32_t b = 0; b < x.size(); ++b)
    bad += bits_of(out[0][b]) != b << 16;
  EXPECT_EQ(bad, 0);
}

// add, mul, scale and accumulate are exact per element; sum reduces in blocks, then over the
// blocks' partials, in a fixed order, so it must match a double sum to rounding and agree with
// itself across schedules.
TEST_P(ActivationEmulation, ElementwiseOpsAndSumMatchTheCpu) {
  const ActivationCase& ac = GetParam();
  const std::vector<float> a = uniform_values(ac.n, -3, 3), b = uniform_values(ac.n, -3, 3);
  const auto out =
      run_elementwise(ac, {[&](float* y) { cuda::add(ac.n, a.data(), b.data(), y, nullptr); },
                           [&](float* y) { cuda::mul(ac.n, a.data(), b.data(), y, nullptr); },
                           [&](float* y) { cuda::scale(ac.n, 0.37f, a.data(), y, nullptr); },
                           [&](float* y) {
                             std::copy(b.begin(), b.end(), y);
                             cuda::accumulate(ac.n, a.data(), y, nullptr);
                           }});
  std::vector<float> sum_ref(ac.n), mul_ref(ac.n), scale_ref(ac.n);
  for (int64_t i = 0; i < ac.n; ++i) {
    sum_ref[i] = a[i] + b[i];
    mul_ref[i] = a[i] * b[i];
    scale_ref[i] = 0.37f * a[i];
  }
  EXPECT_EQ(bit_mismatches(out[0], sum_ref), 0) << "add";
  EXPECT_EQ(bit_mismatches(out[1], mul_ref), 0) << "mul";
  EXPECT_EQ(bit_mismatches(out[2], scale_ref), 0) << "scale";
  EXPECT_EQ(bit_mismatches(out[3], sum_ref), 0) << "accumulate";

  emu::set_multiprocessors(ac.multiprocessors);
  Buffer total(1);
  const auto reduced = in_every_schedule([&] {
    total.poison_all();
    cuda::sum(ac.n, a.data(), total.data(), nullptr);
    EXPECT_TRUE(total.guards_intact()) << "sum wrote outside its result";
    return std::vector<std::vector<float>>{total.values()};
  });
  emu::set_multiprocessors(132);
  double want = 0, magnitude = 0;
  for (float v : a)
    want += v, magnitude += std::fabs(v);
  EXPECT_NEAR(reduced[0][0], want, 1e-6 * magnitude) << "sum";
}

TEST(CastEmulation, Fp32ToTf32RoundsToNearestTiesAway) {
  const std::vector<float> x = cast_inputs();
  Buffer y(x.size());
  const auto out = in_every_schedule([&] {
    y.poison_all();
    cuda::fp32_to_tf32(x.data(), y.data(), int64_t(x.size()), nullptr);
    EXPECT_TRUE(y.guards_intact()) << "wrote outside y";
    return std::vector<std::vector<float>>{y.values()};
  });
  long bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t u = bits_of(x[i]);
    // A NaN or an infinity is not rounded but loses its low 13 bits all the same, as an H100's
    // cvt.rna.tf32.f32 does: a NaN whose payload lies only there becomes an infinity.
    const uint32_t want = is_finite_bits(u) ? round_mantissa(u, 10, true) : u & 0xffffe000u;
    const bool ok = bits_of(out[0][i]) == want;
    bad += !ok;
    if (!ok && bad <= 5)
      ADD_FAILURE() << std::hex << "fp32 " << u << " -> tf32 " << bits_of(out[0][i]) << ", want "
                    << want;
  }
  EXPECT_EQ(bad, 0);
}

// The split of 3xTF32 (conv3d_fwd.cu): rows of 12 values of cast_inputs become rows of 36, heads
// and tails in both orders; head as fp32_to_tf32 rounds, tail the same rounding of v - head.
// For v of normal size, head + tail is v within 2^-22 |v|; a non-finite v has a NaN tail.
TEST(CastEmulation, Fp32ToTf32SplitGivesHeadsAndTails) {
  constexpr int c = 12;
  std::vector<float> x = cast_inputs();
  while (x.size() % c)
    x.push_back(1.f + float(x.size()) / 1024.f);
  const int64_t rows = int64_t(x.size()) / c;
  auto tf32 = [](float v) {
    const uint32_t u = bits_of(v);
    return from_bits(is_finite_bits(u) ? round_mantissa(u, 10, true) : u & 0xffffe000u);
  };
  for (cuda::Tf32Split order : {cuda::Tf32Split::head_tail_head, cuda::Tf32Split::head_head_tail}) {
    SCOPED_TRACE(order == cuda::Tf32Split::head_tail_head ? "head, tail, head"
                                                          : "head, head, tail");
    Buffer y(3 * x.size());
    const auto out = in_every_schedule([&] {
      y.poison_all();
      cuda::fp32_to_tf32_split(x.data(), y.data(), rows, c, order, nullptr);
      EXPECT_TRUE(y.guards_intact()) << "wrote outside y";
      return std::vector<std::vector<float>>{y.values()};
    });
    const int tail_block = order == cuda::Tf32Split::head_tail_head ? 1 : 2;
    long bad = 0, checked_sums = 0;
    for (int64_t row = 0; row < rows; ++row)
      for (int ch = 0; ch < c; ++ch) {
        const float v = x[row * c + ch];
        const float head = tf32(v);
        const float* got = out[0].data() + row * 3 * c + ch;
        const float got_tail = got[tail_block * c];
        bool ok =
            bits_of(got[0]) == bits_of(head) && bits_of(got[(3 - tail_block) * c]) == bits_of(head);
        if (std::isfinite(v) && std::isfinite(head)) {
          ok = ok && bits_of(got_tail) == bits_of(tf32(v - head));
          const double magnitude = std::fabs(double(v));
          if (magnitude > 0x1p-100 && magnitude < 0x1p100) {
            ++checked_sums;
            ok =
                ok && std::fabs(double(head) + double(got_tail) - double(v)) <= 0x1p-22 * magnitude;
          }
        } else if (!std::isfinite(v)) {
          ok = ok && std::isnan(got_tail);
        }
        bad += !ok;
        if (!ok && bad <= 5)
          ADD_FAILURE() << std::hex << "fp32 " << bits_of(v) << " -> " << bits_of(got[0]) << ", "
                        << bits_of(got[c]) << ", " << bits_of(got[2 * c]);
      }
    EXPECT_EQ(bad, 0);
    EXPECT_GT(checked_sums, 1000);
  }
}

}  // namespace
}  // namespace cu3d
