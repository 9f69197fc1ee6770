#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/profile_scope.h"
#include "layers/module.h"

namespace cu3d {
namespace {

Tensor parameter(std::vector<double> values) {
  const int64_t n = int64_t(values.size());
  Tensor t = Tensor::from_vector(values, {n});
  t.set_requires_grad(true);
  return t;
}

TEST(Tape, RecordsOnlyWhatNeedsGradients) {
  autograd::clear_tape();
  const Tensor plain = Tensor::full({3}, 2.0, DType::f64);
  add(plain, plain);
  EXPECT_EQ(autograd::tape_size(), 0u);
  const Tensor w = parameter({1, 2, 3});
  const Tensor y = add(w, plain);
  EXPECT_EQ(autograd::tape_size(), 1u);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  autograd::clear_tape();
}

TEST(Tape, NoGradScopeRecordsNothing) {
  autograd::clear_tape();
  const Tensor w = parameter({1, 2});
  {
    autograd::NoGradGuard no_grad;
    const Tensor y = mul(w, w);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(autograd::tape_size(), 0u);
  EXPECT_TRUE(autograd::grad_enabled());
}

TEST(Tape, GradientsAccumulateAcrossUsesAndCalls) {
  const Tensor w = parameter({1.5, -2.0});
  // y = sum(w*w + w): dy/dw = 2w + 1, reached through two uses of w.
  autograd::backward(sum(add(mul(w, w), w)));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{4.0, -3.0}));
  // A second forward/backward adds to the existing gradient until zero_grad.
  autograd::backward(sum(w));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{5.0, -2.0}));
  Tensor(w).zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(Tape, InputsReceiveGradientsToo) {
  // Activation maximization needs d(output)/d(input): mark the input as a leaf needing one.
  const Tensor x = parameter({0.5, 0.25});
  const Tensor w = Tensor::from_vector<double>({3, 4}, {2});
  autograd::backward(sum(mul(x, w)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 4}));
}

TEST(Tape, GradientFlowsThroughReshapeViews) {
  const Tensor w = parameter({1, 2, 3, 4, 5, 6});
  const Tensor v = w.reshape({2, 3});
  autograd::backward(sum(mul(v, v)));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{2, 4, 6, 8, 10, 12}));
}

TEST(Tape, BackwardTwiceIsAClearError) {
  const Tensor w = parameter({1, 2});
  const Tensor loss = sum(mul(w, w));
  autograd::backward(loss);
  try {
    autograd::backward(loss);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("called twice"), std::string::npos) << e.what();
  }
}

TEST(Tape, BackwardOnTensorWithoutGradientIsAClearError) {
  const Tensor t = Tensor::full({1}, 1.0, DType::f64);
  try {
    autograd::backward(sum(t));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs no gradient"), std::string::npos) << e.what();
  }
}

TEST(Tape, NonScalarRootNeedsItsGradient) {
  const Tensor w = parameter({1, 2});
  const Tensor y = mul(w, w);
  EXPECT_THROW(autograd::backward(y), Error);
  autograd::backward(y, Tensor::from_vector<double>({1, 10}, {2}));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{2, 40}));
}

TEST(Tape, UnusedBranchesGetNoGradient) {
  const Tensor a = parameter({1});
  const Tensor b = parameter({2});
  mul(b, b);  // recorded, but not on the path to the loss
  autograd::backward(sum(scale(a, 3)));
  EXPECT_EQ(a.grad().item(), 3.0);
  EXPECT_FALSE(b.grad().defined());
}

TEST(Tape, OnlyLeavesCanBeMarked) {
  const Tensor w = parameter({1});
  Tensor y = scale(w, 2);
  EXPECT_THROW(y.set_requires_grad(false), Error);
  autograd::clear_tape();
  EXPECT_THROW(Tensor::zeros({2}, DType::i32).set_requires_grad(true), Error);
}

}  // namespace
}  // namespace cu3d

namespace cu3d {
namespace {

TEST(ProfileScope, NestsWithDotsAndRestores) {
  EXPECT_EQ(ProfileScope::current(), "");
  {
    const ProfileScope model("ensemble");
    {
      const ProfileScope layer("conv3a");
      EXPECT_EQ(ProfileScope::current(), "ensemble.conv3a");
    }
    EXPECT_EQ(ProfileScope::current(), "ensemble");
  }
  EXPECT_EQ(ProfileScope::current(), "");
}

}  // namespace
}  // namespace cu3d

namespace cu3d {
namespace {

// A layer sees its own name as the current scope, so its ops' tape entries and NVTX ranges are
// named after it.
class ScopeProbe : public Module {
 public:
  explicit ScopeProbe(std::string* seen) : seen_(seen) {}
  Tensor forward(const Tensor& x) override {
    *seen_ = ProfileScope::current();
    return x;
  }
  std::string describe() const override { return "ScopeProbe"; }

 private:
  std::string* seen_;
};

TEST(ProfileScope, SequentialNamesEachLayer) {
  std::string seen;
  Sequential outer;
  auto inner = outer.add("block1", std::make_shared<Sequential>());
  inner->add("conv3a", std::make_shared<ScopeProbe>(&seen));
  outer(Tensor::zeros({1}));
  EXPECT_EQ(seen, "block1.conv3a");
}

}  // namespace
}  // namespace cu3d
