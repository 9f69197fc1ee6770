#include "engine/numerics.h"

#include <atomic>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"

namespace cu3d {
namespace {

std::atomic<bool> g_check_numerics{false};

}  // namespace

void set_check_numerics(bool enabled) {
  g_check_numerics.store(enabled);
}
bool check_numerics() {
  return g_check_numerics.load();
}

void check_finite(const Tensor& t, const std::string& what) {
  if (!t.defined() || !is_floating(t.dtype())) return;
  const std::vector<double> values = t.to(DType::f64).to_vector<double>();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    if (first < 0) first = int64_t(i);
    ++bad;
  }
  if (bad == 0) return;
  throw NonFiniteError(fmt::format("{} {} holds {} non-finite value(s) (first: {} at element {})",
                                   what, shape_str(t.shape()), bad, values[size_t(first)], first));
}

double clip_grad_norm(const NamedTensors& params, double max_norm) {
  CU3D_CHECK(std::isfinite(max_norm) && max_norm > 0,
             "--clip-grad-norm must be a positive number, got {}", max_norm);
  double squares = 0;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const double s = sum(mul(g, g)).item();
    if (!std::isfinite(s)) {
      check_finite(g, "the gradient of '" + name + "'");
      throw NonFiniteError(fmt::format("the squared norm of the gradient of '{}' overflows", name));
    }
    squares += s;
  }
  const double norm = std::sqrt(squares);
  if (norm <= max_norm) return norm;
  // 1e-6 as in PyTorch, so a norm just above the limit is not divided by almost itself.
  const double factor = max_norm / (norm + 1e-6);
  autograd::NoGradGuard no_grad;
  for (const auto& [name, p] : params)
    if (p.grad().defined()) Tensor(p).set_grad(scale(p.grad(), factor));
  return norm;
}

}  // namespace cu3d
