// The one gradient checker every op test uses (Caffe's GradientChecker, in spirit): the tape's
// gradients of a function against central finite differences, in fp64.
//
// For an op y = f(x1, ..., xk) it draws a random weighting R of y's shape and compares, for each
// input, d(sum(y * R))/dxi from `backward(y, R)` with (L(xi + h) - L(xi - h)) / 2h per element,
// by ||numeric - analytic|| / max(||numeric||, ||analytic||) < rel_tol.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace cu3d::testing {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// sum(y * r) in double.
inline double weighted_sum(const Tensor& y, const Tensor& r) {
  const double* py = y.data<double>();
  const double* pr = r.data<double>();
  double total = 0;
  for (int64_t i = 0; i < y.numel(); ++i)
    total += py[i] * pr[i];
  return total;
}

inline double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const double scale = std::max({std::sqrt(na), std::sqrt(nb), 1e-300});
  return std::sqrt(diff) / scale;
}

// `inputs` are f64 CPU tensors; entries listed in `differentiable` (all when empty) are checked.
inline void expect_gradients_match(const OpFn& fn, std::vector<Tensor> inputs,
                                   double rel_tol = 1e-6, double step = 1e-6,
                                   std::vector<int> differentiable = {}, uint64_t seed = 1234) {
  if (differentiable.empty())
    for (int i = 0; i < int(inputs.size()); ++i)
      differentiable.push_back(i);
  for (int i : differentiable) {
    ASSERT_EQ(inputs[i].dtype(), DType::f64) << "gradcheck needs f64 inputs";
    inputs[i] = inputs[i].clone();
    inputs[i].set_requires_grad(true);
  }

  Tensor y = fn(inputs);
  Generator gen(seed);
  const Tensor r = Tensor::uniform(y.shape(), -1.0, 1.0, gen, DType::f64);
  autograd::backward(y, r);

  autograd::NoGradGuard no_grad;
  for (int i : differentiable) {
    Tensor x = inputs[i];
    ASSERT_TRUE(x.grad().defined()) << "input " << i << " received no gradient";
    const std::vector<double> analytic = x.grad().to_vector<double>();
    std::vector<double> numeric(x.numel());
    double* px = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double saved = px[j];
      px[j] = saved + step;
      const double plus = weighted_sum(fn(inputs), r);
      px[j] = saved - step;
      const double minus = weighted_sum(fn(inputs), r);
      px[j] = saved;
      numeric[j] = (plus - minus) / (2 * step);
    }
    EXPECT_LT(relative_error(numeric, analytic), rel_tol) << "gradient of input " << i;
  }
}

// A fresh random f64 tensor in [-1, 1).
inline Tensor random_f64(const Shape& shape, Generator& gen) {
  return Tensor::uniform(shape, -1.0, 1.0, gen, DType::f64);
}

}  // namespace cu3d::testing
