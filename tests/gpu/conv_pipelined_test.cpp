// Version 3 (pipelined) against version 2 on the same operands, and the shapes it takes. Both round
// the operands the same way (tf32 round-to-nearest, bf16 round-to-nearest-even) and issue the same
// mma instructions over r in the same order, so their outputs should agree bit for bit; the
// parity suite (cu3d_pipelined cases) checks each against the CPU reference as well.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/cases.h"
#include "gpu/parity.h"
#include "gpu/require_gpu.h"
#include "kernels/cuda/conv3d.cuh"

namespace cu3d::parity {
namespace {

TEST(ConvPipelined, MatchesVersion2BitForBit) {
  CU3D_REQUIRE_GPU();
  std::vector<cases::ConvLayer> layers = cases::c3d_conv_layers(2);
  for (const auto& l : cases::odd_conv_layers())
    layers.push_back(l);
  const cuda::Stream stream;
  std::mt19937_64 rng(5);
  int compared = 0;
  for (const auto& layer : layers) {
    const Conv3dShape& s = layer.shape;
    for (Precision p : {Precision::tf32, Precision::bf16}) {
      if (!cuda::conv3d_fwd_pipelined_supports(s, p)) continue;
      const DeviceArray x(random_floats(s.input_size(), rng)),
          w(random_floats(s.filter_size(), rng));
      const DeviceArray bias(random_floats(s.k, rng));
      // Version 3 falls back to version 2 for misaligned operands: these must take it.
      ASSERT_EQ(reinterpret_cast<uintptr_t>(x.get()) % 16, 0u);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(w.get()) % 16, 0u);
      DeviceArray v2(s.output_size()), v3(s.output_size());
      v2.poison();
      v3.poison();
      cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), v2.get(), p, stream.get());
      cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), v3.get(), p, stream.get(),
                       cuda::ConvKernel::pipelined);
      CU3D_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
      const std::vector<float> a = v2.download(), b = v3.download();
      int64_t differ = 0, not_finite = 0;
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i)
        if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
          ++differ;
          if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
            ++not_finite;
          else
            worst = std::max(worst, double(std::abs(a[i] - b[i])));
        }
      EXPECT_EQ(differ, 0) << layer.name << " " << to_string(p) << ": " << differ << " of "
                           << a.size() << " outputs differ (" << not_finite
                           << " not finite: unwritten), the finite ones by up to " << worst;
      ++compared;
    }
  }
  // conv2a-conv5b in bf16 and tf32, conv1a in neither; the odd shape with 64 channels in both.
  EXPECT_EQ(compared, 2 * 7 + 2);
}

TEST(ConvPipelined, TakesOnlyTheShapesItIsBuiltFor) {
  const auto layers = cases::c3d_conv_layers(32);
  EXPECT_FALSE(cuda::conv3d_fwd_pipelined_supports(layers[0].shape, Precision::bf16));  // c = 3
  for (size_t i = 1; i < layers.size(); ++i) {
    EXPECT_TRUE(cuda::conv3d_fwd_pipelined_supports(layers[i].shape, Precision::bf16));
    EXPECT_TRUE(cuda::conv3d_fwd_pipelined_supports(layers[i].shape, Precision::tf32));
    EXPECT_FALSE(cuda::conv3d_fwd_pipelined_supports(layers[i].shape, Precision::fp32));
  }
  // Backward-data is a forward conv from k = 64..512 channels: every layer, conv1a included.
  for (const auto& layer : layers) {
    EXPECT_TRUE(cuda::conv3d_bwd_data_pipelined_supports(layer.shape, Precision::bf16));
    EXPECT_TRUE(cuda::conv3d_bwd_data_pipelined_supports(layer.shape, Precision::tf32));
  }
  // Not with a stride (the mirrored problem is no forward conv), nor 48 filters (dy's channels).
  EXPECT_FALSE(cuda::conv3d_bwd_data_pipelined_supports(
      Conv3dShape::make(2, {8, 16, 16}, 64, 64, {3, 3, 3}, {2, 2, 2}, Padding::explicit_,
                        {1, 1, 1}),
      Precision::tf32));
  EXPECT_FALSE(cuda::conv3d_bwd_data_pipelined_supports(
      Conv3dShape::make(2, {8, 16, 16}, 64, 48, {3, 3, 3}, {1, 1, 1}, Padding::explicit_,
                        {1, 1, 1}),
      Precision::tf32));
}

}  // namespace
}  // namespace cu3d::parity
