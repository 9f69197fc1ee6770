// The DeviceFeeder's CUDA path (pinned uint8 buffers, copy stream, events, the normalize_clips op
// on the compute stream) against its CPU path, batch by batch, bit-exact. Its shards come from a
// dataset in memory and synthetic frames (tests/cpu/synthetic_frames.h), not from video files,
// so the GPU suite needs no OpenCV: the GPU machines' image has none.
#include <gtest/gtest.h>

#include <optional>

#include "cpu/synthetic_frames.h"
#include "cpu/test_data_fixtures.h"
#include "data/clip_source.h"
#include "data/device_feeder.h"
#include "data/loader.h"
#include "data/shard.h"
#include "gpu/require_gpu.h"

namespace cu3d::data {
namespace {

TEST(FeederCuda, DeliversTheCpuFeedersBatches) {
  CU3D_REQUIRE_GPU();
  testing::TempDir shards_path;
  Recipe recipe = keras_recipe(4, true, true);
  recipe.mean_source = "dataset";
  prepare_shards(testing::in_memory_dataset(4, 5, 2), recipe, shards_path.path(),
                 {.videos_per_shard = 9, .progress = false}, testing::synthetic_frames);
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
