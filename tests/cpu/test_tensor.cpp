#include <gtest/gtest.h>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace cu3d {
namespace {

TEST(Tensor, DescribesItself) {
  const Tensor t = Tensor::zeros({2, 8, 28, 28, 64});
  EXPECT_EQ(t.dim(), 5);
  EXPECT_EQ(t.numel(), 2 * 8 * 28 * 28 * 64);
  EXPECT_EQ(t.size(-1), 64);
  EXPECT_EQ(t.str(), "f32[2,8,28,28,64] cpu");
  EXPECT_EQ(t.nbytes(), size_t(t.numel()) * 4);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "host data is 64-byte aligned";
  EXPECT_EQ(Tensor().str(), "undefined");
  EXPECT_THROW(t.size(5), Error);
  EXPECT_THROW(Tensor::zeros({1, 1, 1, 1, 1, 1, 1}), Error) << "at most 6 axes";
}

TEST(Tensor, TypedAccessChecksDtype) {
  const Tensor t = Tensor::zeros({3}, DType::f64);
  EXPECT_NO_THROW(t.data<double>());
  EXPECT_THROW(t.data<float>(), Error);
}

TEST(Tensor, ReshapeIsAViewSharingStorage) {
  Generator gen(3);
  const Tensor t = Tensor::uniform({2, 3, 4}, -1, 1, gen);
  const Tensor v = t.reshape({6, -1});
  EXPECT_EQ(v.shape(), (Shape{6, 4}));
  EXPECT_TRUE(v.shares_storage_with(t));
  EXPECT_EQ(v.data<float>(), t.data<float>());
  EXPECT_EQ(t.flatten().shape(), (Shape{2, 12}));
  EXPECT_THROW(t.reshape({5, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({25}), Error);
}

TEST(Tensor, CloneAndCopyAreDeep) {
  Generator gen(4);
  const Tensor t = Tensor::uniform({5}, -1, 1, gen);
  Tensor c = t.clone();
  EXPECT_FALSE(c.shares_storage_with(t));
  EXPECT_EQ(c.to_vector<float>(), t.to_vector<float>());
  c.fill_(2.0);
  EXPECT_NE(c.to_vector<float>(), t.to_vector<float>());
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Generator gen(5);
  const Tensor t = Tensor::uniform({64}, -3, 3, gen);
  const auto original = t.to_vector<float>();
  const auto as_f64 = t.to(DType::f64).to_vector<double>();
  for (size_t i = 0; i < original.size(); ++i)
    EXPECT_EQ(as_f64[i], double(original[i]));
  const auto via_bf16 = t.to(DType::bf16).to(DType::f32).to_vector<float>();
  const auto via_f16 = t.to(DType::f16).to(DType::f32).to_vector<float>();
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_NEAR(via_bf16[i], original[i], std::abs(original[i]) * (1.0 / 256));  // 8-bit mantissa
    EXPECT_NEAR(via_f16[i], original[i], std::abs(original[i]) * (1.0 / 2048));  // 11-bit
  }
  EXPECT_EQ(Tensor::full({2}, 7.9, DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{7, 7}));
  EXPECT_EQ(Tensor::full({1}, 200, DType::u8).item(), 200.0);
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one.
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST(Tensor, FromVectorChecksCount) {
  EXPECT_EQ(Tensor::from_vector<int64_t>({1, 2, 3, 4}, {2, 2}).to_vector<int64_t>()[3], 4);
  EXPECT_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), Error);
}

TEST(Device, ParsesNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::cuda(2).str(), "cuda:2");
  EXPECT_THROW(Device::parse("gpu"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
}

TEST(Device, CudaTensorsNeedTheCudaBackend) {
  std::string reason;
  if (cuda_available(&reason)) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(reason.empty());
  EXPECT_THROW(Tensor::zeros({4}, DType::f32, Device::cuda()), Error);
}

TEST(Generator, SameSeedSameStream) {
  Generator a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
  const auto state = a.state();
  const double next = a.normal(0, 1);
  a.set_state(state);
  EXPECT_EQ(a.normal(0, 1), next) << "restoring the state replays the stream";
}

TEST(Generator, UniformAndNormalMoments) {
  Generator gen(7);
  double sum = 0, sum_sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = gen.normal(1.0, 2.0);
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 1.0, 0.03);
  EXPECT_NEAR(sum_sq / n - mean * mean, 4.0, 0.08);
  for (int i = 0; i < 1000; ++i) {
    const double u = gen.uniform(-2, 3);
    EXPECT_GE(u, -2);
    EXPECT_LT(u, 3);
    EXPECT_LT(gen.below(7), 7u);
  }
}

}  // namespace
}  // namespace cu3d
