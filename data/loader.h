// The prefetching loader: N worker threads cut clips (D,H,W,C uint8) into batches (N,D,H,W,C)
// with int32 labels, ahead of the consumer by at most `prefetch` batches.
//
// Determinism: an epoch's order is a seeded permutation of the videos (train) or the videos'
// windows in order (eval); batch b holds items [b*B, (b+1)*B) of it, and each clip's window, crop
// and flip come from a seed made of (seed, epoch, video) alone. Workers take whole batches, and
// the consumer receives them in index order, so the batches are identical for any worker count.
// Every video appears exactly once per training epoch; every window once per evaluation pass.
//
// Unreadable videos (raw-video sources only) are left out of their batch, which is then short
// (Batch::size); the source warns once per video and counts them.
//
// Batches are host vectors of uint8 clips; data/device_feeder.h normalizes them into pinned
// buffers and copies those to the device asynchronously (what is copied is pinned, not these).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/clip_plan.h"
#include "data/clip_source.h"
#include "data/recipe.h"

namespace cu3d::data {

struct LoaderOptions {
  int batch_size = 16;
  int workers = 2;
  int prefetch = 4;  // batches ready or in flight ahead of the consumer
  Mode mode = Mode::train;
  uint64_t seed = 0;
  bool drop_last = false;  // drop the epoch's final partial batch
  // Data parallel: this process's share of every epoch (data/rank_share.h).
  int rank = 0;
  int world = 1;
};

struct Batch {
  int64_t index = 0;                // position in the epoch
  int size = 0;                     // clips actually in the batch
  std::array<int, 4> clip_shape{};  // (D, H, W, C) of each clip
  std::vector<uint8_t> clips;       // (size, D, H, W, C), capacity batch_size clips
  std::vector<int32_t> labels;      // size
  std::vector<int32_t> videos;      // source index of each clip (average eval windows per video)
};

class Loader {
 public:
  // `source` must outlive the loader. Throws cu3d::Error for options out of range.
  Loader(const ClipSource& source, const Recipe& recipe, const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Begins epoch `epoch` (abandoning what is left of the previous one).
  void start_epoch(int epoch);
  // The epoch's next batch in order, or nothing when the epoch is done. Rethrows a worker's
  // failure.
  std::optional<Batch> next();
  // Hands a consumed batch's buffer back for reuse.
  void recycle(Batch&& batch);

  int64_t batches_per_epoch() const;
  int64_t items_per_epoch() const { return int64_t(items_.size()); }
  // Items repeated in a training epoch so that the world size divides it (0 for one process).
  int64_t padded_per_epoch() const { return padded_; }
  // Clips cut from videos shorter than the recipe's depth (looped), since construction.
  int64_t looped() const { return looped_; }

 private:
  struct Item {
    int32_t video;
    int32_t window;  // eval: which window; train: unused
  };
  void work();
  Batch make_batch(int64_t index, uint64_t epoch_seed);
  void take_share();
  bool cut_item(const Item& item, uint64_t epoch_seed, Clip& scratch, uint8_t* out);

  const ClipSource& source_;
  Recipe recipe_;
  LoaderOptions options_;
  size_t clip_bytes_ = 0;
  std::vector<Item> items_;
  uint64_t epoch_seed_ = 0;
  int64_t padded_ = 0;
  std::atomic<int64_t> looped_{0};

  std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_, idle_;
  bool stopping_ = false;
  bool epoch_active_ = false;
  int64_t next_to_make_ = 0;
  int64_t next_to_hand_ = 0;
  int in_flight_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr failure_;
  std::vector<std::vector<uint8_t>> free_buffers_;
  std::vector<std::jthread> workers_;
};

}  // namespace cu3d::data
