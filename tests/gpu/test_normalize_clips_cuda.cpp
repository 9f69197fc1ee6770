// The uint8 input path on CUDA: the normalize_clips op against its CPU path. Bit-exact: both
// compute (x - mean) * scale in float, a subtraction and a product that no compiler contracts.
#include <gtest/gtest.h>

#include <vector>

#include "cpu/random_clips.h"
#include "engine/ops/input.h"
#include "engine/tensor.h"
#include "gpu/require_gpu.h"

namespace cu3d {
namespace {

using testing::random_clips;

TEST(NormalizeClipsCuda, MatchesTheCpu) {
  CU3D_REQUIRE_GPU();
  struct Case {
    Shape shape;
    std::vector<float> mean;
  };
  // RGB rows a multiple of 4 values (the kernel's float4 path), odd gray rows, no mean.
  for (const Case& c : {Case{{2, 3, 8, 12, 3}, {10.5f, 120.0f, 250.25f}},
                        Case{{3, 2, 5, 7, 1}, {99.5f}}, Case{{1, 2, 4, 4, 3}, {}}}) {
    SCOPED_TRACE(shape_str(c.shape));
    const Tensor clips = random_clips(c.shape, 7);
    const Tensor want = normalize_clips(clips, c.mean, 1.0f / 255);
    const Tensor got = normalize_clips(clips.to(Device::cuda()), c.mean, 1.0f / 255);
    ASSERT_EQ(got.device(), Device::cuda());
    ASSERT_EQ(got.shape(), c.shape);
    EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  }
}

}  // namespace
}  // namespace cu3d
