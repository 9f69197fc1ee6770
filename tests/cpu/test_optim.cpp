#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace cu3d {
namespace {

// f(w) = sum(a * (w - t)^2) with a in [0.5, 5): an ill-conditioned quadratic whose minimum is t.
struct Quadratic {
  Tensor a, t;
  explicit Quadratic(Generator& gen)
      : a(Tensor::uniform({13}, 0.5, 5, gen)), t(Tensor::uniform({13}, -2, 2, gen)) {}
  Tensor loss(const Tensor& w) const {
    const Tensor d = add(w, scale(t, -1));
    return sum(mul(a, mul(d, d)));
  }
  double distance(const Tensor& w) const {
    const auto vw = w.to_vector<float>(), vt = t.to_vector<float>();
    double d = 0;
    for (size_t i = 0; i < vw.size(); ++i)
      d = std::max(d, std::abs(double(vw[i]) - vt[i]));
    return d;
  }
};

void minimize(Optimizer& opt, const Quadratic& q, const Tensor& w, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    autograd::backward(q.loss(w));
    opt.step();
  }
}

TEST(Optim, SgdAndAdamMinimizeAQuadratic) {
  Generator gen(121);
  const Quadratic q(gen);
  const auto start = [&] {
    Tensor w = Tensor::uniform({13}, -1, 1, gen);
    w.set_requires_grad(true);
    return w;
  };
  Tensor w_sgd = start(), w_nesterov = start(), w_adam = start(), w_adamw = start();
  const double initial = q.distance(w_sgd);
  SGD sgd({w_sgd}, {.lr = 0.02, .momentum = 0.9});
  SGD nesterov({w_nesterov}, {.lr = 0.02, .momentum = 0.9, .nesterov = true});
  Adam adam({w_adam}, {.lr = 0.05});
  Adam adamw({w_adamw}, {.lr = 0.05, .weight_decay = 1e-4, .decoupled = true});
  minimize(sgd, q, w_sgd, 300);
  minimize(nesterov, q, w_nesterov, 300);
  minimize(adam, q, w_adam, 600);
  minimize(adamw, q, w_adamw, 600);
  EXPECT_GT(initial, 0.1);
  EXPECT_LT(q.distance(w_sgd), 1e-4);
  EXPECT_LT(q.distance(w_nesterov), 1e-4);
  EXPECT_LT(q.distance(w_adam), 1e-3);
  // Decoupled decay pulls towards 0 by ~ lr * wd * w per step: a small, bounded bias.
  EXPECT_LT(q.distance(w_adamw), 1e-2);
  EXPECT_EQ(adam.steps(), 600);
}

// One step with a known gradient follows the kernels' formulas; parameters without a gradient
// are left alone.
TEST(Optim, StepUsesLearningRateAndSkipsParametersWithoutGradient) {
  Tensor w = Tensor::from_vector<double>({1.0, -2.0}, {2});
  Tensor frozen = Tensor::from_vector<double>({3.0}, {1});
  w.set_requires_grad(true);
  frozen.set_requires_grad(true);
  w.set_grad(Tensor::from_vector<double>({0.5, -0.25}, {2}));
  SGD sgd({{"w", w}, {"frozen", frozen}}, {.lr = 1.0});
  sgd.set_lr(0.1);
  sgd.step();
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{1.0 - 0.05, -2.0 + 0.025}));
  EXPECT_EQ(frozen.to_vector<double>(), std::vector<double>{3.0});

  // With a constant gradient g, bias-corrected Adam moves by lr * g / (|g| + eps) on every
  // step, not just the first.
  Adam adam({{"w", w}}, {.lr = 0.01, .eps = 1e-8});
  for (int i = 0; i < 3; ++i)
    adam.step();
  EXPECT_NEAR(w.to_vector<double>()[0], 0.95 - 3 * 0.01 * 0.5 / (0.5 + 1e-8), 1e-14);
  EXPECT_NEAR(w.to_vector<double>()[1], -1.975 + 3 * 0.01 * 0.25 / (0.25 + 1e-8), 1e-14);
}

TEST(Optim, StateIsNamedAndLive) {
  Tensor a = Tensor::full({2, 3}, 0.5), b = Tensor::full({4}, -0.5);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  a.set_grad(Tensor::full({2, 3}, 0.25));
  b.set_grad(Tensor::full({4}, 0.75));
  Adam adam({{"conv.weight", a}, {"conv.bias", b}}, {});
  adam.step();
  const NamedTensors state = adam.state();
  std::vector<std::string> names;
  for (const auto& [name, t] : state)
    names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv.weight.exp_avg", "conv.weight.exp_avg_sq",
                                             "conv.bias.exp_avg", "conv.bias.exp_avg_sq", "step"}));
  EXPECT_EQ(state[0].second.shape(), (Shape{2, 3}));
  EXPECT_NEAR(state[0].second.to_vector<float>()[0], 0.1 * 0.25, 1e-7);
  EXPECT_EQ(state[4].second.item(), 1.0);
  // Restoring is writing into the live tensors.
  Tensor(state[4].second).fill_(41);
  EXPECT_EQ(adam.steps(), 41);

  SGD plain({a}, {});
  EXPECT_EQ(plain.state().size(), 1u);  // only "step" without momentum
  SGD momentum({a, b}, {.momentum = 0.9});
  EXPECT_EQ(momentum.state()[1].first, "1.momentum_buffer");
}

TEST(Optim, BadParametersAndOptions) {
  const Tensor no_grad = Tensor::full({3}, 1.0);
  try {
    SGD sgd({{"fc.weight", no_grad}}, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SGD: parameter 'fc.weight' (f32[3] cpu)"),
              std::string::npos)
        << e.what();
  }
  Tensor w = Tensor::full({3}, 1.0);
  w.set_requires_grad(true);
  EXPECT_THROW(SGD({w}, {.nesterov = true}), Error);
  EXPECT_THROW(Adam({w}, {.beta1 = 1.0}), Error);
  SGD sgd({w}, {});
  EXPECT_THROW(sgd.set_lr(-1), Error);
}

}  // namespace
}  // namespace cu3d
