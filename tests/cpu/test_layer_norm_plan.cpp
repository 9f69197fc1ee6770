// The resident per-sample layer norm's plans (kernels/cuda/layer_norm_plan.h) on an H100's
// numbers, without a GPU: 132 SMs, 227 KB of shared memory a block and 228 KB an SM, and the
// kernels' registers as ptxas reports them for sm_90a (48 and 62 for the kernels that hold all
// their slice, forward and backward; 94 and 80 for the partly held ones), which with the shared
// memory give the blocks an SM holds, as CUDA's occupancy query would. C3D's layers at batch 32
// take the plans docs/kernels/ops_cuda.md describes; on any shape the plan covers every sample
// with slices of whole 1024-element runs, and never asks for more blocks than the device holds.
#include <algorithm>
#include <cstdint>
#include <random>

#include <gtest/gtest.h>

#include "kernels/cuda/layer_norm_plan.h"

namespace cu3d::cuda {
namespace {

constexpr int kSms = 132, kSharedPerBlock = 227 * 1024, kSharedPerSm = 228 * 1024;

// Blocks of 256 threads an H100 holds at once with `registers` per thread and `shared` bytes of
// dynamic shared memory (plus the 256 static and the 1 KB the driver reserves per block).
int64_t h100_resident(int registers, int shared) {
  const int by_registers = 65536 / (((registers + 7) / 8 * 8) * 256);
  const int by_shared = kSharedPerSm / (shared + 256 + 1024);
  return int64_t(kSms) * std::min({by_registers, by_shared, 8});
}

ResidentPlan h100_plan(int64_t elements, int64_t groups, bool backward) {
  const int arrays = backward ? 2 : 1;
  return plan_resident(elements / 4, groups, arrays, kSms, kSharedPerBlock,
                       [&](int shared, bool partly) {
                         const int registers = backward ? (partly ? 80 : 62) : (partly ? 94 : 48);
                         return h100_resident(registers, shared);
                       });
}

struct LayerPlan {
  const char* layer;
  int64_t elements;  // a sample's: d * h * w * c
  bool backward;
  int team, teams;
  bool partly_held;
};

TEST(LayerNormPlan, C3dLayersAtBatch32OnAnH100) {
  const LayerPlan plans[] = {
      {"conv1a", 16 * 112 * 112 * 64, false, 131, 1, true},
      {"conv2a", 16 * 56 * 56 * 128, false, 112, 1, false},
      {"conv3b", 8 * 28 * 28 * 256, false, 28, 4, false},
      {"conv4b", 4 * 14 * 14 * 512, false, 7, 16, false},
      {"conv5b", 2 * 7 * 7 * 512, false, 5, 32, false},
      {"conv1a", 16 * 112 * 112 * 64, true, 131, 1, true},
      {"conv2a", 16 * 56 * 56 * 128, true, 131, 1, true},
      {"conv3b", 8 * 28 * 28 * 256, true, 56, 2, false},
      {"conv4b", 4 * 14 * 14 * 512, true, 14, 8, false},
      {"conv5b", 2 * 7 * 7 * 512, true, 5, 32, false},
  };
  for (const LayerPlan& want : plans) {
    SCOPED_TRACE(std::string(want.layer) + (want.backward ? " backward" : " forward"));
    const ResidentPlan plan = h100_plan(want.elements, 32, want.backward);
    EXPECT_EQ(plan.team, want.team);
    EXPECT_EQ(plan.teams, want.teams);
    EXPECT_EQ(plan.partly_held(), want.partly_held);
  }
  // What the partly held plans hold of a sample: conv1a forward and conv2a backward 58 %,
  // conv1a backward 29 %.
  const auto held_share = [](int64_t elements, bool backward) {
    const ResidentPlan plan = h100_plan(elements, 32, backward);
    return double(plan.held_vecs) * plan.team / double(elements / 4);
  };
  EXPECT_NEAR(held_share(16 * 112 * 112 * 64, false), 0.58, 0.01);
  EXPECT_NEAR(held_share(16 * 56 * 56 * 128, true), 0.58, 0.01);
  EXPECT_NEAR(held_share(16 * 112 * 112 * 64, true), 0.29, 0.01);
}

TEST(LayerNormPlan, CoversEverySampleWithinTheDevice) {
  std::mt19937_64 rng(16);
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t size4 = 256 * int64_t(1 + rng() % 20000) - int64_t(rng() % 256);
    const int64_t groups = 1 + int64_t(rng() % 200);
    const int arrays = 1 + int(rng() % 2);
    const int sms = 1 + int(rng() % 160);
    // Room for at least one 256-float4 slice of each array (NoPlanWithoutRoomForASlice: less).
    const int max_shared =
        kResidentStaticShared + 16 * kResidentGrain * arrays + int(rng() % (220 * 1024));
    const int per_sm = 1 + int(rng() % 8);
    SCOPED_TRACE(::testing::Message() << "size4 " << size4 << ", groups " << groups << ", arrays "
                                      << arrays << ", SMs " << sms << ", shared " << max_shared);
    int64_t resident = 0;
    const ResidentPlan plan =
        plan_resident(size4, groups, arrays, sms, max_shared, [&](int shared, bool) -> int64_t {
          EXPECT_LE(shared + kResidentStaticShared, max_shared);
          resident = int64_t(sms) * per_sm;
          return resident;
        });
    ASSERT_TRUE(plan.fits());
    EXPECT_EQ(plan.slice_vecs % kResidentGrain, 0);
    EXPECT_EQ(plan.held_vecs % kResidentGrain, 0);
    EXPECT_LE(plan.held_vecs, plan.slice_vecs);
    EXPECT_GE(int64_t(plan.slice_vecs) * plan.team, size4);        // every float4 of a sample
    EXPECT_LT(int64_t(plan.slice_vecs) * (plan.team - 1), size4);  // and no empty slice
    EXPECT_EQ(plan.shared_bytes, plan.held_vecs * 16 * arrays);
    EXPECT_LE(plan.blocks(), resident);
    EXPECT_LE(plan.teams, groups);
    EXPECT_GE(plan.teams, 1);
  }
}

TEST(LayerNormPlan, NoPlanWithoutRoomForASlice) {
  const auto none = [](int, bool) -> int64_t { return 0; };
  EXPECT_FALSE(plan_resident(4096, 2, 2, 132, 8 * 1024, none).fits());    // 7 KB: 224 float4s
  EXPECT_FALSE(plan_resident(4096, 2, 1, 132, 227 * 1024, none).fits());  // no block resident
}

}  // namespace
}  // namespace cu3d::cuda
