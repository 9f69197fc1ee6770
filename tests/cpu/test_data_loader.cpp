#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include <gtest/gtest.h>

#include "data/clip_source.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/synth.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

using testing::TempDir;

// A c3d-style recipe at the tiny dataset's size: random 24x24 crops and flips of 8-frame windows,
// evaluation windows every 4 frames (20-frame videos: starts 0, 4, 8, 12).
Recipe small_window_recipe() {
  Recipe recipe = c3d_recipe();
  recipe.depth = 8;
  recipe.resize_height = 32;
  recipe.resize_width = 40;
  recipe.crop_height = recipe.crop_width = 24;
  recipe.stride = 4;
  return recipe;
}

class DataLoader : public ::testing::Test {
 protected:
  void SetUp() override {
    write_synth_dataset(videos_.path(), testing::tiny_synth_options());
    dataset_ = load_dataset(videos_.path(), {});
    prepare_shards(dataset_, small_window_recipe(), shards_path_.path(),
                   {.threads = 2, .videos_per_shard = 7, .progress = false});
    shards_ = std::make_unique<ShardSet>(shards_path_.path());
  }

  TempDir videos_, shards_path_;
  Dataset dataset_;
  std::unique_ptr<ShardSet> shards_;
};

struct Epoch {
  std::vector<int32_t> videos, labels;
  std::vector<uint8_t> bytes;
  std::vector<int> sizes;
};

Epoch run_epoch(Loader& loader, int epoch) {
  Epoch result;
  loader.start_epoch(epoch);
  while (std::optional<Batch> batch = loader.next()) {
    EXPECT_EQ(batch->index, int64_t(result.sizes.size()));
    const auto [d, h, w, c] = batch->clip_shape;
    EXPECT_EQ(batch->clips.size(), size_t(batch->size) * d * h * w * c);
    result.sizes.push_back(batch->size);
    result.videos.insert(result.videos.end(), batch->videos.begin(), batch->videos.end());
    result.labels.insert(result.labels.end(), batch->labels.begin(), batch->labels.end());
    result.bytes.insert(result.bytes.end(), batch->clips.begin(), batch->clips.end());
    loader.recycle(std::move(*batch));
  }
  return result;
}

TEST_F(DataLoader, TrainingEpochDeliversEveryClipOnceWithItsLabel) {
  const ShardSource source(*shards_, Side::train);
  Loader loader(source, small_window_recipe(), {.batch_size = 4, .workers = 3, .seed = 9});
  const Epoch epoch = run_epoch(loader, 0);
  ASSERT_EQ(source.size(), 18u);
  EXPECT_EQ(epoch.sizes, (std::vector<int>{4, 4, 4, 4, 2}));
  std::vector<int32_t> sorted = epoch.videos;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int32_t> all(source.size());
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  EXPECT_NE(epoch.videos, all) << "training order must be shuffled";
  for (size_t i = 0; i < epoch.videos.size(); ++i)
    EXPECT_EQ(epoch.labels[i], source.label(size_t(epoch.videos[i])));
}

TEST_F(DataLoader, SameSeedSameBatchesForAnyWorkerCount) {
  const ShardSource source(*shards_, Side::train);
  const Recipe recipe = small_window_recipe();
  Loader one(source, recipe, {.batch_size = 5, .workers = 1, .prefetch = 1, .seed = 3});
  Loader four(source, recipe, {.batch_size = 5, .workers = 4, .prefetch = 8, .seed = 3});
  const Epoch a = run_epoch(one, 2), b = run_epoch(four, 2);
  EXPECT_EQ(a.videos, b.videos);
  EXPECT_TRUE(a.bytes == b.bytes) << "clip bytes differ between 1 and 4 workers";
  const Epoch next_epoch = run_epoch(four, 3);
  EXPECT_NE(next_epoch.videos, a.videos);
  Loader other_seed(source, recipe, {.batch_size = 5, .workers = 2, .seed = 4});
  EXPECT_NE(run_epoch(other_seed, 2).videos, a.videos);
  EXPECT_EQ(run_epoch(one, 2).bytes, a.bytes) << "replaying an epoch must repeat it";
}

TEST_F(DataLoader, EvaluationVisitsEveryWindowOfEveryVideoInOrder) {
  const ShardSource source(*shards_, Side::test);
  const Recipe recipe = small_window_recipe();
  Loader loader(source, recipe, {.batch_size = 5, .workers = 2, .mode = Mode::eval});
  const Epoch epoch = run_epoch(loader, 0);
  ASSERT_EQ(source.size(), 6u);
  ASSERT_EQ(epoch.videos.size(), 6u * 4);
  for (size_t i = 0; i < epoch.videos.size(); ++i)
    EXPECT_EQ(epoch.videos[i], int32_t(i / 4));
  // Window 2 of video 3 is the centre crop of frames 8..15.
  const std::vector<ClipPlan> plans = plan_eval_clips(recipe, source.frame_count(3));
  std::vector<uint8_t> expected(8 * 24 * 24 * 3);
  Clip scratch;
  cut_clip(*source.frames(3, scratch), recipe, plans[2], expected.data());
  EXPECT_EQ(std::memcmp(epoch.bytes.data() + (3 * 4 + 2) * expected.size(), expected.data(),
                        expected.size()),
            0);
}

TEST_F(DataLoader, DropLastAndAbandonedEpochs) {
  const ShardSource source(*shards_, Side::train);
  Loader loader(source, small_window_recipe(),
                {.batch_size = 4, .workers = 2, .prefetch = 2, .drop_last = true});
  loader.start_epoch(0);
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  ASSERT_TRUE(loader.next());  // abandon the rest of epoch 0
  const Epoch epoch = run_epoch(loader, 1);
  EXPECT_EQ(epoch.sizes, (std::vector<int>{4, 4, 4, 4}));
}

TEST_F(DataLoader, RawVideoSourceSkipsUnreadableVideosAndCountsLoops) {
  std::vector<VideoEntry> videos = dataset_.test;
  testing::write_bytes(videos_.path() / "broken.avi", "not a video");
  videos.push_back({videos_.path() / "broken.avi", 0, "g99"});
  testing::write_quadrant_video(videos_.path() / "short.avi", 3, 32, 40);
  videos.push_back({videos_.path() / "short.avi", 1, "g98"});
  const VideoSource source(videos, small_window_recipe());
  Loader loader(source, small_window_recipe(), {.batch_size = 3, .workers = 2, .seed = 1});
  ::testing::internal::CaptureStderr();
  const Epoch epoch = run_epoch(loader, 0);
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warnings.find("broken.avi"), std::string::npos);
  EXPECT_EQ(source.stats().skipped, 1);
  EXPECT_EQ(loader.looped(), 1);
  std::vector<int32_t> sorted = epoch.videos;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 7}));
  EXPECT_EQ(std::accumulate(epoch.sizes.begin(), epoch.sizes.end(), 0), 7);
}

// A JPEG shard side read the slow way: every frame of the video decoded, then cut (the default
// ClipSource::planned_frames), to check the loader's path that decodes only the planned frames.
class FullyDecodedSource : public ClipSource {
 public:
  explicit FullyDecodedSource(const ShardSource& shards) : shards_(shards) {}
  size_t size() const override { return shards_.size(); }
  int label(size_t i) const override { return shards_.label(i); }
  int frame_count(size_t i) const override { return shards_.frame_count(i); }
  std::optional<FrameView> frames(size_t i, Clip& scratch) const override {
    return shards_.frames(i, scratch);
  }

 private:
  const ShardSource& shards_;
};

TEST_F(DataLoader, JpegShardsDecodeOnlyThePlannedFramesIntoTheSameClips) {
  // Depth 8 cuts windows of the 20-frame videos; depth 24 loops them, so frames repeat in a clip;
  // spaced sampling of 24 frames out of 20 repeats frames out of order (0, 0, 1, 2, 3, 4, 5, 5...).
  for (const auto& [depth, sampling] :
       {std::pair{8, Sampling::window}, std::pair{24, Sampling::window},
        std::pair{24, Sampling::spaced}}) {
    Recipe recipe = small_window_recipe();
    recipe.depth = depth;
    recipe.sampling = sampling;
    TempDir out;
    prepare_shards(dataset_, recipe, out.path(),
                   {.videos_per_shard = 7, .progress = false, .format = FrameFormat::jpeg});
    const ShardSet shards(out.path());
    for (const Mode mode : {Mode::train, Mode::eval}) {
      const ShardSource source(shards, mode == Mode::train ? Side::train : Side::test);
      const FullyDecodedSource slow(source);
      const LoaderOptions options{.batch_size = 4, .workers = 2, .mode = mode, .seed = 5};
      Loader fast_loader(source, recipe, options), slow_loader(slow, recipe, options);
      const Epoch fast = run_epoch(fast_loader, 1), slow_epoch = run_epoch(slow_loader, 1);
      EXPECT_EQ(fast.videos, slow_epoch.videos);
      EXPECT_TRUE(fast.bytes == slow_epoch.bytes) << "depth " << depth;
      EXPECT_FALSE(fast.bytes.empty());
      EXPECT_EQ(fast_loader.looped() > 0, depth > 20);
    }
  }
}

}  // namespace
}  // namespace cu3d::data
