// Engine-level CUDA checks: device storage from the stream-ordered pool, copies both ways, and a
// clear out-of-memory error.
#include <gtest/gtest.h>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "gpu/require_gpu.h"

namespace cu3d {
namespace {

TEST(TensorCuda, RoundTripsThroughTheDevice) {
  CU3D_REQUIRE_GPU();
  Generator gen(11);
  const Tensor host = Tensor::uniform({3, 5, 7, 2}, -1, 1, gen);
  const Tensor device = host.to(Device::cuda());
  EXPECT_EQ(device.device(), Device::cuda());
  EXPECT_EQ(device.str(), "f32[3,5,7,2] cuda:0");
  EXPECT_EQ(device.to_vector<float>(), host.to_vector<float>());
  const Tensor copy = device.clone();
  EXPECT_EQ(copy.to(Device::cpu()).to_vector<float>(), host.to_vector<float>());
  EXPECT_EQ(device.to(DType::f64).device(), Device::cuda());
  EXPECT_EQ(Tensor::full({4}, 2.5, DType::f32, Device::cuda()).to_vector<float>(),
            (std::vector<float>{2.5f, 2.5f, 2.5f, 2.5f}));
}

TEST(TensorCuda, OutOfMemoryNamesTheRequestAndSuggestsASmallerBatch) {
  CU3D_REQUIRE_GPU();
  try {
    Tensor::empty({int64_t(1) << 42}, DType::f32, Device::cuda());  // 16 TiB
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("out of memory"), std::string::npos) << message;
    EXPECT_NE(message.find("--batch"), std::string::npos) << message;
  }
  // The device is still usable afterwards.
  EXPECT_EQ(Tensor::full({1}, 3.0, DType::f32, Device::cuda()).item(), 3.0);
}

}  // namespace
}  // namespace cu3d
