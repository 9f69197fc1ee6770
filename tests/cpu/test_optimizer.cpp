#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_testing.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

using namespace cu3d::kernel_testing;

// Three SGD steps of a constant gradient 0.5 from param 1 with lr 0.1, worked by hand.
TEST(Optimizer, SgdHandWorkedSteps) {
  struct Case {
    double momentum, weight_decay;
    bool nesterov;
    double after[3];
  };
  const Case cases[] = {
      // p -= 0.1 * 0.5
      {0.0, 0.0, false, {0.95, 0.9, 0.85}},
      // buf = 0.5, 0.95, 1.355
      {0.9, 0.0, false, {0.95, 0.855, 0.7195}},
      // g + 0.9 * buf = 0.95, 1.355, 1.7195
      {0.9, 0.0, true, {0.905, 0.7695, 0.59755}},
      // g = 0.5 + 0.1 * p: 0.6, 0.594, 0.58806
      {0.0, 0.1, false, {0.94, 0.8806, 0.821794}},
  };
  for (const Case& c : cases) {
    float param = 1.0f, grad = 0.5f, buf = 0.0f;
    for (int step = 0; step < 3; ++step) {
      sgd_step<float>(1, &param, &grad, &buf, 0.1, c.momentum, c.weight_decay, c.nesterov);
      EXPECT_NEAR(param, c.after[step], 1e-6) << c.momentum << " " << c.nesterov << " " << step;
    }
  }
}

// A constant gradient moves Adam by lr * |g| / (|g| + eps) per step whatever the step count:
// the bias corrections make m_hat = g and v_hat = g^2 exactly. AdamW also shrinks param by
// (1 - lr * wd) first.
TEST(Optimizer, AdamHandWorkedSteps) {
  double param = 1.0, adamw_param = 1.0, m = 0, v = 0, adamw_m = 0, adamw_v = 0;
  const double grad = 0.5, lr = 0.01, eps = 1e-8, move = lr * 0.5 / (0.5 + eps);
  double want_adamw = 1.0;
  for (int64_t step = 1; step <= 4; ++step) {
    adam_step<double>(1, &param, &grad, &m, &v, lr, 0.9, 0.999, eps, 0.0, false, step);
    adam_step<double>(1, &adamw_param, &grad, &adamw_m, &adamw_v, lr, 0.9, 0.999, eps, 0.1, true,
                      step);
    want_adamw = want_adamw * (1 - lr * 0.1) - move;
    EXPECT_NEAR(param, 1.0 - double(step) * move, 1e-14) << step;
    EXPECT_NEAR(adamw_param, want_adamw, 1e-14) << step;
  }
}

// torch.optim.SGD's algorithm as documented, buf initialized to the first gradient.
void sgd_reference(std::vector<double>& p, const std::vector<double>& grad,
                   std::vector<double>& buf, int step, double lr, double mu, double wd,
                   bool nesterov) {
  for (size_t i = 0; i < p.size(); ++i) {
    double g = grad[i] + wd * p[i];
    if (mu != 0) {
      buf[i] = step == 1 ? g : mu * buf[i] + g;
      g = nesterov ? g + mu * buf[i] : buf[i];
    }
    p[i] -= lr * g;
  }
}

// torch.optim.Adam / AdamW as documented.
void adam_reference(std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& m,
                    std::vector<double>& v, int step, double lr, double b1, double b2, double eps,
                    double wd, bool decoupled) {
  for (size_t i = 0; i < p.size(); ++i) {
    double g = grad[i];
    if (decoupled) {
      p[i] *= 1 - lr * wd;
    } else {
      g += wd * p[i];
    }
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    const double m_hat = m[i] / (1 - std::pow(b1, step));
    const double v_hat = v[i] / (1 - std::pow(b2, step));
    p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

template <typename T>
class OptimizerTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(OptimizerTyped, FloatTypes);

// Five steps with fresh random gradients, on a size that is threaded and one that is odd.
TYPED_TEST(OptimizerTyped, SgdMatchesReference) {
  using T = TypeParam;
  for (int64_t n : {37, 40001}) {
    for (bool nesterov : {false, true}) {
      std::mt19937_64 rng(71);
      auto p_ref = random_vector<double>(n, rng);
      std::vector<double> buf_ref(n);
      std::vector<T> p(p_ref.begin(), p_ref.end()), buf(n, T(0));
      for (int step = 1; step <= 5; ++step) {
        const auto grad = random_vector<double>(n, rng);
        const std::vector<T> grad_t(grad.begin(), grad.end());
        sgd_reference(p_ref, grad, buf_ref, step, 0.05, 0.9, 1e-2, nesterov);
        sgd_step<T>(n, p.data(), grad_t.data(), buf.data(), 0.05, 0.9, 1e-2, nesterov);
      }
      EXPECT_LT(max_scaled_diff(p, std::vector<T>(p_ref.begin(), p_ref.end())),
                rounding_tolerance<T>());
    }
  }
}

TYPED_TEST(OptimizerTyped, AdamMatchesReference) {
  using T = TypeParam;
  for (int64_t n : {37, 40001}) {
    for (bool decoupled : {false, true}) {
      std::mt19937_64 rng(72);
      auto p_ref = random_vector<double>(n, rng);
      std::vector<double> m_ref(n), v_ref(n);
      std::vector<T> p(p_ref.begin(), p_ref.end()), m(n, T(0)), v(n, T(0));
      for (int step = 1; step <= 5; ++step) {
        const auto grad = random_vector<double>(n, rng);
        const std::vector<T> grad_t(grad.begin(), grad.end());
        adam_reference(p_ref, grad, m_ref, v_ref, step, 1e-2, 0.9, 0.999, 1e-8, 0.05, decoupled);
        adam_step<T>(n, p.data(), grad_t.data(), m.data(), v.data(), 1e-2, 0.9, 0.999, 1e-8, 0.05,
                     decoupled, step);
      }
      EXPECT_LT(max_scaled_diff(p, std::vector<T>(p_ref.begin(), p_ref.end())),
                rounding_tolerance<T>());
      EXPECT_LT(max_scaled_diff(v, std::vector<T>(v_ref.begin(), v_ref.end())),
                rounding_tolerance<T>());
    }
  }
}

TEST(Optimizer, BadArgumentsThrow) {
  float p = 1.5f, g = 0.5f, m = 0, v = 0;
  EXPECT_THROW(sgd_step<float>(1, &p, &g, nullptr, 0.1, 0.9, 0.0, false), Error);
  EXPECT_THROW(sgd_step<float>(1, &p, &g, &m, 0.1, 0.0, 0.0, true), Error);
  EXPECT_THROW(adam_step<float>(1, &p, &g, &m, &v, 0.1, 0.9, 0.999, 1e-8, 0, false, 0), Error);
  EXPECT_THROW(adam_step<float>(1, &p, &g, &m, &v, 0.1, 1.0, 0.999, 1e-8, 0, false, 1), Error);
}

}  // namespace
}  // namespace cu3d::cpu
