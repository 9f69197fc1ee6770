// The uint8 input path on CUDA: the normalize_clips op against its CPU path, and the
// DeviceFeeder's CUDA path (pinned uint8 buffers, copy stream, events, the op on the compute
// stream) against its CPU path, batch by batch. Bit-exact: both compute (x - mean) * scale in
// float, a subtraction and a product that no compiler contracts.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/test_data_fixtures.h"
#include "data/clip_source.h"
#include "data/dataset.h"
#include "data/device_feeder.h"
#include "data/loader.h"
#include "data/shard.h"
#include "engine/ops/input.h"
#include "gpu/require_gpu.h"

namespace cu3d::data {
namespace {

Tensor random_clips(const Shape& shape, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<uint8_t> bytes(size_t(shape_numel(shape)));
  for (uint8_t& byte : bytes)
    byte = uint8_t(random());
  return Tensor::from_vector(bytes, shape);
}

TEST(FeederCuda, NormalizeClipsMatchesTheCpu) {
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

TEST(FeederCuda, DeliversTheCpuFeedersBatches) {
  CU3D_REQUIRE_GPU();
  testing::TempDir videos, shards_path;
  write_synth_dataset(videos.path(), testing::tiny_synth_options());
  Recipe recipe = keras_recipe(4, true, true);
  recipe.mean_source = "dataset";
  prepare_shards(load_dataset(videos.path(), {}), recipe, shards_path.path(),
                 {.videos_per_shard = 9, .progress = false});
  const ShardSet shards(shards_path.path());
  const ShardSource source(shards, Side::train);
  // Batches of 3 leave a smaller last batch, which takes its own pinned buffers.
  const LoaderOptions options{.batch_size = 3, .workers = 2, .seed = 5};
  Loader on_cpu(source, shards.recipe(), options), on_gpu(source, shards.recipe(), options);
  const Shape input{4, 32, 32, 3};
  DeviceFeeder cpu_feeder(on_cpu, shards.recipe(), input, Device::cpu());
  DeviceFeeder gpu_feeder(on_gpu, shards.recipe(), input, Device::cuda());
  for (int epoch : {0, 1}) {
    cpu_feeder.start_epoch(epoch);
    gpu_feeder.start_epoch(epoch);
    int batches = 0;
    while (std::optional<DeviceBatch> want = cpu_feeder.next()) {
      std::optional<DeviceBatch> got = gpu_feeder.next();
      ASSERT_TRUE(got) << "batch " << batches;
      EXPECT_EQ(got->input.device(), Device::cuda());
      EXPECT_EQ(got->host.videos, want->host.videos);
      EXPECT_EQ(got->labels.to_vector<int32_t>(), want->labels.to_vector<int32_t>());
      EXPECT_EQ(got->input.to_vector<float>(), want->input.to_vector<float>());
      ++batches;
    }
    EXPECT_FALSE(gpu_feeder.next());
    EXPECT_GT(batches, 2);
  }
  // An epoch restarted with a copy in flight drops it and delivers the new epoch's first batch.
  cpu_feeder.start_epoch(2);
  gpu_feeder.start_epoch(2);
  gpu_feeder.start_epoch(2);
  EXPECT_EQ(gpu_feeder.next()->input.to_vector<float>(),
            cpu_feeder.next()->input.to_vector<float>());
}

}  // namespace
}  // namespace cu3d::data
