// data/device_feeder: on the CPU a pass-through that normalizes each loader batch with the
// engine's normalize_clips op; the CUDA path (pinned uint8 buffers, copy stream, events) needs a
// GPU and is not run here.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "data/clip_source.h"
#include "data/dataset.h"
#include "data/device_feeder.h"
#include "data/loader.h"
#include "data/shard.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

using testing::TempDir;

// 4-frame 32x32 RGB clips with a dataset mean and the keras scale, so both terms show.
Recipe feeder_recipe() {
  Recipe recipe = keras_recipe(4, true, true);
  recipe.mean_source = "dataset";
  return recipe;
}

// (pixel - mean[c]) * scale, channels last: the recipe's normalization, written out.
std::vector<float> normalized(const Batch& batch, const Recipe& recipe) {
  const size_t count = size_t(batch.size) * batch.clip_shape[0] * batch.clip_shape[1] *
                       batch.clip_shape[2] * batch.clip_shape[3];
  const size_t c = size_t(batch.clip_shape[3]);
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i)
    out[i] = (float(batch.clips[i]) - recipe.mean[i % c]) * recipe.scale;
  return out;
}

class DataFeederOnCpu : public ::testing::Test {
 protected:
  void SetUp() override {
    write_synth_dataset(videos_.path(), testing::tiny_synth_options());
    prepare_shards(load_dataset(videos_.path(), {}), feeder_recipe(), shards_path_.path(),
                   {.videos_per_shard = 9, .progress = false});
    shards_ = std::make_unique<ShardSet>(shards_path_.path());
  }

  TempDir videos_, shards_path_;
  std::unique_ptr<ShardSet> shards_;
};

TEST_F(DataFeederOnCpu, DeliversTheLoadersBatchesNormalized) {
  const ShardSource source(*shards_, Side::train);
  const Recipe& recipe = shards_->recipe();
  ASSERT_EQ(recipe.mean.size(), 3u) << "prep fills the dataset mean, so both terms show";
  const LoaderOptions options{.batch_size = 4, .workers = 2, .seed = 11};
  Loader plain(source, recipe, options), fed(source, recipe, options);
  const Shape input{4, 32, 32, 3};
  DeviceFeeder feeder(fed, recipe, input, Device::cpu());
  for (int epoch : {0, 1}) {
    plain.start_epoch(epoch);
    feeder.start_epoch(epoch);
    std::vector<int32_t> seen;
    while (std::optional<Batch> expected = plain.next()) {
      std::optional<DeviceBatch> batch = feeder.next();
      ASSERT_TRUE(batch);
      EXPECT_EQ(batch->host.index, expected->index);
      EXPECT_EQ(batch->host.videos, expected->videos);
      ASSERT_EQ(batch->input.shape(), (Shape{expected->size, 4, 32, 32, 3}));
      EXPECT_EQ(batch->input.device(), Device::cpu());
      EXPECT_EQ(batch->labels.to_vector<int32_t>(), expected->labels);
      EXPECT_EQ(batch->input.to_vector<float>(), normalized(*expected, recipe));
      seen.insert(seen.end(), batch->host.videos.begin(), batch->host.videos.end());
    }
    EXPECT_FALSE(feeder.next()) << "the feeder ends with the loader's epoch";
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen.size(), source.size());
    EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "every clip once";
  }
}

TEST_F(DataFeederOnCpu, RestartingAnEpochDropsTheBatchAhead) {
  const ShardSource source(*shards_, Side::train);
  const Recipe& recipe = shards_->recipe();
  const LoaderOptions options{.batch_size = 4, .workers = 2, .seed = 3};
  Loader plain(source, recipe, options), fed(source, recipe, options);
  DeviceFeeder feeder(fed, recipe, {4, 32, 32, 3}, Device::cpu());
  feeder.start_epoch(0);
  ASSERT_TRUE(feeder.next());  // batch 1 of epoch 0 is now ahead
  feeder.start_epoch(1);
  plain.start_epoch(1);
  const std::optional<Batch> expected = plain.next();
  const std::optional<DeviceBatch> batch = feeder.next();
  ASSERT_TRUE(expected && batch);
  EXPECT_EQ(batch->host.videos, expected->videos);
  EXPECT_EQ(batch->input.to_vector<float>(), normalized(*expected, recipe));
}

TEST_F(DataFeederOnCpu, RejectsAModelInputOfAnotherSizeAndCudaWithoutAGpu) {
  const ShardSource source(*shards_, Side::train);
  Loader loader(source, shards_->recipe(), {});
  EXPECT_THROW(DeviceFeeder(loader, shards_->recipe(), {4, 32, 32, 1}, Device::cpu()), Error);
  if (cuda_available()) GTEST_SKIP() << "a GPU is present: the CUDA path is the GPU suite's";
  EXPECT_THROW(DeviceFeeder(loader, shards_->recipe(), {4, 32, 32, 3}, Device::cuda()), Error);
}

TEST_F(DataFeederOnCpu, NextBeforeStartEpochIsEmpty) {
  const ShardSource source(*shards_, Side::train);
  Loader loader(source, shards_->recipe(), {});
  DeviceFeeder feeder(loader, shards_->recipe(), {4, 32, 32, 3}, Device::cpu());
  EXPECT_FALSE(feeder.next());
}

}  // namespace
}  // namespace cu3d::data
