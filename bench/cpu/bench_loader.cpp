// Loader throughput in clips/s, from raw shards, from JPEG shards and from raw videos, per worker
// count.
//
//   cmake --build build --target cu3d_bench_cpu && build/cu3d_bench_cpu --benchmark_filter=Loader
//
// The data is a synthetic set written once per run into the temp dir: 32 MJPG videos of 40 frames
// at 320x240 (UCF101's frame size), prepared with the c3d recipe (128x171 frames, 112x112 random
// crop + flip, 16 frames), once raw and as JPEG at prep's default quality (95) and at 85. From raw
// shards a clip is 16 x 112 x 112 x 3 = 602 KB of copies out of the page cache, so the goal
// (>= 400 clips/s per core) is ~240 MB/s per core; from JPEG shards it is 16 JPEG decodes of
// 171x128; from videos every clip costs a full decode and resize of its video, which is why
// shards exist. The synthetic frames (flat shapes on flat backgrounds, with noise) are not
// UCF101's: JPEG sizes and decode times of real video differ.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <unistd.h>

#include <benchmark/benchmark.h>

#include "data/clip_source.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/synth.h"

namespace cu3d::data {
namespace {

namespace fs = std::filesystem;

constexpr int kBatchSize = 16;
// prep's default, and a lower quality for the speed it buys.
constexpr int kJpegQualities[] = {95, 85};

// The videos and their shards, created on first use and removed at exit.
class BenchData {
 public:
  static const BenchData& get() {
    static const BenchData data;
    return data;
  }
  ~BenchData() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  const Dataset& dataset() const { return dataset_; }
  const ShardSet& shards() const { return *shards_; }
  const ShardSet& jpeg_shards(int quality) const { return *jpeg_shards_.at(quality); }

 private:
  BenchData()
      : root_(fs::temp_directory_path() / ("cu3d-bench-loader-" + std::to_string(::getpid()))) {
    SynthOptions synth;
    synth.groups = 4;
    synth.clips_per_group = 1;
    synth.frames = 40;
    synth.height = 240;
    synth.width = 320;
    write_synth_dataset(root_ / "videos", synth);
    dataset_ = load_dataset(root_ / "videos", {});
    prepare_shards(dataset_, c3d_recipe(), root_ / "shards", {.threads = 2, .progress = false});
    shards_ = std::make_unique<ShardSet>(root_ / "shards");
    for (const int quality : kJpegQualities) {
      const fs::path folder = root_ / ("jpeg-shards-q" + std::to_string(quality));
      prepare_shards(
          dataset_, c3d_recipe(), folder,
          {.threads = 2, .progress = false, .format = FrameFormat::jpeg, .jpeg_quality = quality});
      jpeg_shards_[quality] = std::make_unique<ShardSet>(folder);
    }
  }

  fs::path root_;
  Dataset dataset_;
  std::unique_ptr<ShardSet> shards_;
  std::map<int, std::unique_ptr<ShardSet>> jpeg_shards_;
};

// Pulls batches for the benchmark's duration, restarting epochs as they end.
void run_loader(benchmark::State& state, const ClipSource& source) {
  const int workers = int(state.range(0));
  Loader loader(source, c3d_recipe(),
                {.batch_size = kBatchSize, .workers = workers, .prefetch = 2 * workers});
  int epoch = 0;
  loader.start_epoch(epoch);
  int64_t clips = 0;
  for (auto _ : state) {
    std::optional<Batch> batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    clips += batch->size;
    loader.recycle(std::move(*batch));
  }
  state.SetItemsProcessed(clips);
  state.counters["clips/s"] = benchmark::Counter(double(clips), benchmark::Counter::kIsRate);
  state.counters["clips/s/worker"] =
      benchmark::Counter(double(clips) / workers, benchmark::Counter::kIsRate);
}

// The shards' stored bytes per frame (raw: 128 x 171 x 3 = 65,664).
void count_bytes_per_frame(benchmark::State& state, const ShardSet& shards) {
  double bytes = 0, frames = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    bytes += double(shards.video(i).bytes);
    frames += shards.video(i).frames;
  }
  state.counters["bytes/frame"] = bytes / frames;
}

void BM_LoaderFromShards(benchmark::State& state) {
  const ShardSource source(BenchData::get().shards(), Side::train);
  run_loader(state, source);
  count_bytes_per_frame(state, BenchData::get().shards());
}

// Arguments: workers, JPEG quality.
void BM_LoaderFromJpegShards(benchmark::State& state) {
  const ShardSet& shards = BenchData::get().jpeg_shards(int(state.range(1)));
  const ShardSource source(shards, Side::train);
  run_loader(state, source);
  count_bytes_per_frame(state, shards);
}

void BM_LoaderFromVideos(benchmark::State& state) {
  const VideoSource source(BenchData::get().dataset().train, c3d_recipe());
  run_loader(state, source);
}

// Workers 1..4: this build machine has 2 cores, so 4 shows oversubscription, not scaling.
BENCHMARK(BM_LoaderFromShards)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoaderFromJpegShards)
    ->ArgsProduct({{1, 2}, {95, 85}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoaderFromVideos)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cu3d::data
