#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/conv.h"
#include "engine/ops/dense.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/dense.h"
#include "kernels/cpu/pool3d.h"

namespace cu3d {
namespace {

using testing::expect_gradients_match;
using testing::random_f64;

// max |a - b| over two equally long vectors.
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    diff = std::max(diff, double(std::abs(a[i] - b[i])));
  return diff;
}

// Runs `f`, which must throw cu3d::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected cu3d::Error";
  } catch (const Error& e) {
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message lacks \"" << part << "\": " << e.what();
  }
}

// ---- forward against the kernels' naive references ---------------------------------------

TEST(ConvOp, Conv3dForwardMatchesNaiveKernel) {
  Generator gen(21);
  const Tensor x = Tensor::uniform({2, 4, 5, 6, 3}, -1, 1, gen);
  const Tensor w = Tensor::uniform({4, 3, 3, 3, 3}, -1, 1, gen);
  const Tensor b = Tensor::uniform({4}, -1, 1, gen);
  const Tensor y = conv3d(x, w, b, {.stride = {1, 2, 2}, .padding = Padding::same});
  const Conv3dShape s = Conv3dShape::make(2, {4, 5, 6}, 3, 4, {3, 3, 3}, {1, 2, 2}, Padding::same);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 3, 3, 4}));
  std::vector<float> want(s.output_size());
  cpu::conv3d_fwd_naive(s, x.data<float>(), w.data<float>(), b.data<float>(), want.data());
  EXPECT_LT(max_abs_diff(y.to_vector<float>(), want), 1e-5);
}

TEST(ConvOp, Conv2dIsConv3dWithDepthOne) {
  Generator gen(22);
  const Tensor x = Tensor::uniform({2, 7, 6, 3}, -1, 1, gen);
  const Tensor w = Tensor::uniform({5, 3, 3, 3}, -1, 1, gen);
  const Tensor y = conv2d(x, w, Tensor(), {.stride = {2, 2}, .padding = Padding::same});
  ASSERT_EQ(y.shape(), (Shape{2, 4, 3, 5}));
  const Conv3dShape s = Conv3dShape::make(2, {1, 7, 6}, 3, 5, {1, 3, 3}, {1, 2, 2}, Padding::same);
  std::vector<float> want(s.output_size());
  cpu::conv3d_fwd_naive<float>(s, x.data<float>(), w.data<float>(), nullptr, want.data());
  EXPECT_LT(max_abs_diff(y.to_vector<float>(), want), 1e-5);
}

TEST(PoolOp, ForwardMatchesNaiveKernel) {
  Generator gen(23);
  const Tensor x = Tensor::uniform({2, 2, 7, 7, 5}, -1, 1, gen);
  const Tensor y = max_pool3d(x, {.padding = Padding::explicit_, .pad = {0, 1, 1}});  // pool5
  ASSERT_EQ(y.shape(), (Shape{2, 1, 4, 4, 5}));
  const Pool3dShape s =
      Pool3dShape::make(2, {2, 7, 7}, 5, {2, 2, 2}, {2, 2, 2}, Padding::explicit_, {0, 1, 1});
  std::vector<float> want(s.output_size());
  cpu::maxpool3d_fwd_naive(s, x.data<float>(), want.data());
  EXPECT_EQ(y.to_vector<float>(), want);

  const Tensor x2 = Tensor::uniform({1, 9, 11, 2}, -1, 1, gen);
  const Tensor y2 = max_pool2d(x2, {.window = {3, 3}, .stride = {2, 2}, .ceil_mode = true});
  EXPECT_EQ(y2.shape(), (Shape{1, 4, 5, 2}));
}

TEST(DenseOp, ForwardMatchesNaiveKernel) {
  Generator gen(24);
  const Tensor x = Tensor::uniform({5, 11}, -1, 1, gen);
  const Tensor w = Tensor::uniform({7, 11}, -1, 1, gen);
  const Tensor b = Tensor::uniform({7}, -1, 1, gen);
  const Tensor y = dense(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{5, 7}));
  std::vector<float> want(35);
  cpu::dense_fwd_naive<float>(5, 11, 7, x.data<float>(), w.data<float>(), b.data<float>(),
                              want.data());
  EXPECT_LT(max_abs_diff(y.to_vector<float>(), want), 1e-5);
}

// ---- gradients against finite differences (fp64, rel err < 1e-6) -----------------------

TEST(ConvOp, Conv3dGradients) {
  Generator gen(31);
  expect_gradients_match(
      [](const auto& in) {
        return conv3d(in[0], in[1], in[2], {.stride = {1, 2, 1}, .padding = Padding::same});
      },
      {random_f64({1, 3, 4, 4, 2}, gen), random_f64({3, 3, 2, 3, 2}, gen), random_f64({3}, gen)});
  expect_gradients_match(
      [](const auto& in) {
        return conv3d(in[0], in[1], Tensor(), {.padding = Padding::explicit_, .pad = {1, 0, 1}});
      },
      {random_f64({1, 3, 4, 3, 3}, gen), random_f64({2, 2, 2, 2, 3}, gen)});
}

TEST(ConvOp, Conv2dGradients) {
  Generator gen(32);
  expect_gradients_match(
      [](const auto& in) {
        return conv2d(in[0], in[1], in[2], {.stride = {2, 2}, .padding = Padding::same});
      },
      {random_f64({2, 5, 6, 3}, gen), random_f64({4, 3, 3, 3}, gen), random_f64({4}, gen)});
}

// An input that needs no gradient (a data batch) gets none; the parameters still do.
TEST(ConvOp, ParameterOnlyGradients) {
  Generator gen(33);
  expect_gradients_match(
      [](const auto& in) { return conv3d(in[0], in[1], in[2], {.padding = Padding::same}); },
      {random_f64({1, 3, 3, 3, 2}, gen), random_f64({2, 3, 3, 3, 2}, gen), random_f64({2}, gen)},
      1e-6, 1e-6, {1, 2});
  const Tensor x = random_f64({1, 3, 3, 3, 2}, gen);
  Tensor w = random_f64({2, 1, 1, 1, 2}, gen);
  w.set_requires_grad(true);
  autograd::backward(sum(conv3d(x, w, Tensor())));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_TRUE(w.grad().defined());
}

TEST(PoolOp, Gradients) {
  Generator gen(34);
  expect_gradients_match([](const auto& in) { return max_pool3d(in[0]); },
                         {random_f64({2, 4, 5, 6, 3}, gen)});
  expect_gradients_match(
      [](const auto& in) {
        return max_pool3d(in[0],
                          {.window = {3, 3, 3}, .stride = {1, 2, 2}, .padding = Padding::same});
      },
      {random_f64({1, 3, 5, 4, 2}, gen)});
  expect_gradients_match(
      [](const auto& in) {
        return max_pool2d(in[0], {.window = {3, 3}, .stride = {2, 2}, .ceil_mode = true});
      },
      {random_f64({2, 7, 6, 2}, gen)});
}

TEST(DenseOp, Gradients) {
  Generator gen(35);
  expect_gradients_match([](const auto& in) { return dense(in[0], in[1], in[2]); },
                         {random_f64({4, 6}, gen), random_f64({3, 6}, gen), random_f64({3}, gen)});
  expect_gradients_match([](const auto& in) { return dense(in[0], in[1], Tensor()); },
                         {random_f64({2, 5}, gen), random_f64({7, 5}, gen)});
}

// ---- bad input: one cu3d::Error naming the op, the shapes and what was expected ----------

TEST(ConvOp, MismatchesAreErrors) {
  const Tensor x = Tensor::zeros({2, 4, 6, 6, 3});
  const Tensor w = Tensor::zeros({8, 3, 3, 3, 4});
  expect_error([&] { conv3d(x, w, Tensor()); },
               {"conv3d", "f32[2,4,6,6,3] cpu", "3 channels", "f32[8,3,3,3,4] cpu", "expects 4"});
  expect_error(
      [&] {
        conv3d(x, Tensor::zeros({8, 3, 3, 3}), Tensor());
      },
      {"conv3d", "expected x (n,d,h,w,c), w (k,kd,kh,kw,c)", "f32[8,3,3,3] cpu"});
  expect_error(
      [&] {
        conv3d(x, Tensor::zeros({8, 3, 3, 3, 3}), Tensor::zeros({7}));
      },
      {"conv3d", "bias b must have shape [8]", "f32[7] cpu"});
  expect_error(
      [&] {
        conv3d(x, Tensor::zeros({8, 3, 3, 3, 3}, DType::f64), Tensor());
      },
      {"conv3d", "dtype", "f64[8,3,3,3,3] cpu"});
  expect_error(
      [&] {
        conv3d(x, Tensor::zeros({8, 5, 3, 3, 3}), Tensor());
      },
      {"conv3d", "does not fit", "f32[2,4,6,6,3] cpu"});
  expect_error(
      [&] {
        conv3d(Tensor::zeros({1, 3, 3, 3, 2}, DType::i32),
               Tensor::zeros({1, 1, 1, 1, 2}, DType::i32), Tensor());
      },
      {"conv3d", "i32", "f32 or f64"});
  expect_error(
      [&] {
        conv2d(Tensor::zeros({2, 6, 6, 3}), Tensor::zeros({8, 3, 3, 2}), Tensor());
      },
      {"conv2d", "f32[2,6,6,3] cpu", "f32[8,3,3,2] cpu"});
  expect_error([&] { conv2d(x, w, Tensor()); }, {"conv2d", "expected x (n,h,w,c)"});
}

TEST(PoolOp, MismatchesAreErrors) {
  expect_error(
      [] {
        max_pool3d(Tensor::zeros({2, 6, 6, 3}));
      },
      {"max_pool3d", "(n,d,h,w,c)", "f32[2,6,6,3] cpu"});
  expect_error(
      [] {
        max_pool2d(Tensor::zeros({2, 1, 6, 6, 3}));
      },
      {"max_pool2d", "(n,h,w,c)", "f32[2,1,6,6,3] cpu"});
  expect_error(
      [] {
        max_pool2d(Tensor::zeros({1, 4, 4, 1}), {.padding = Padding::explicit_, .pad = {2, 2}});
      },
      {"max_pool2d", "padding smaller than the window", "f32[1,4,4,1] cpu"});
  expect_error(
      [] {
        max_pool3d(Tensor::zeros({1, 1, 4, 4, 1}));
      },
      {"max_pool3d", "does not fit", "f32[1,1,4,4,1] cpu"});
}

TEST(DenseOp, MismatchesAreErrors) {
  expect_error(
      [] {
        dense(Tensor::zeros({4, 6}), Tensor::zeros({3, 5}), Tensor());
      },
      {"dense", "f32[4,6] cpu", "6 features", "f32[3,5] cpu", "expects 5"});
  expect_error(
      [] {
        dense(Tensor::zeros({4, 2, 3}), Tensor::zeros({3, 6}), Tensor());
      },
      {"dense", "expected x (m, in)", "f32[4,2,3] cpu", "flatten"});
  expect_error(
      [] {
        dense(Tensor::zeros({4, 6}), Tensor::zeros({3, 6}), Tensor::zeros({4}));
      },
      {"dense", "bias b must have shape [3]", "f32[4] cpu"});
}

}  // namespace
}  // namespace cu3d
