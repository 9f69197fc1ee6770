// Helpers shared by the tests of the CPU kernels (raw pointers, no tensors): fresh random
// buffers, a scale-aware comparison of a fast kernel with its naive reference, and central
// finite differences for checking a naive backward pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace cu3d::kernel_testing {

// Uniform values in [lo, hi): never zeros, never a pattern a kernel could get right by accident.
template <typename T>
std::vector<T> random_vector(int64_t size, std::mt19937_64& rng, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(size);
  for (T& e : v)
    e = T(dist(rng));
  return v;
}

// A buffer an overwriting kernel must fully replace: any element left unwritten stays NaN
// and fails the comparison.
template <typename T>
std::vector<T> poisoned(int64_t size) {
  return std::vector<T>(size, std::numeric_limits<T>::quiet_NaN());
}

// max |got - want| / max(1, max |want|); NaN anywhere gives infinity. The scale keeps the check
// meaningful whether the outputs are sums of three terms or of thousands.
template <typename T>
double max_scaled_diff(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, scale = 1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(double(got[i]) - double(want[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, d);
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / scale;
}

// Tolerance of a fast kernel against its naive reference: the two sum in different orders, so
// they differ by rounding, ~ sqrt(terms) * epsilon relative to the output scale.
template <typename T>
double rounding_tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

// d loss / d x[i] for every i by central differences; `x` is perturbed in place and restored.
inline std::vector<double> numeric_gradient(const std::function<double()>& loss,
                                            std::vector<double>& x, double step = 1e-6) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + step;
    const double plus = loss();
    x[i] = saved - step;
    const double minus = loss();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * step);
  }
  return grad;
}

// ||a - b|| / max(||a||, ||b||), the measure of the shared gradient checker (tests/gradcheck.h).
inline double norm_relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return std::sqrt(diff) / std::max({std::sqrt(na), std::sqrt(nb), 1e-300});
}

// sum(y * g): the scalar whose gradient with respect to y is g.
inline double weighted_sum(const std::vector<double>& y, const std::vector<double>& g) {
  double total = 0;
  for (size_t i = 0; i < y.size(); ++i)
    total += y[i] * g[i];
  return total;
}

}  // namespace cu3d::kernel_testing
