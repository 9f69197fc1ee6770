#include "data/loader.h"

#include <algorithm>

#include "data/random.h"
#include "data/rank_share.h"
#include "kernels/error.h"

namespace cu3d::data {

Loader::Loader(const ClipSource& source, const Recipe& recipe, const LoaderOptions& options)
    : source_(source), recipe_(recipe), options_(options) {
  check_recipe(recipe_);
  CU3D_CHECK(options.batch_size >= 1 && options.workers >= 1 && options.prefetch >= 1,
             "loader: batch_size {}, workers {} and prefetch {} must be at least 1",
             options.batch_size, options.workers, options.prefetch);
  CU3D_CHECK(options.world >= 1 && options.rank >= 0 && options.rank < options.world,
             "loader: rank {} is not in a world of {}", options.rank, options.world);
  const auto [d, h, w, c] = clip_shape(recipe_);
  clip_bytes_ = size_t(d) * h * w * c;
  for (int i = 0; i < options.workers; ++i)
    workers_.emplace_back([this] { work(); });
}

Loader::~Loader() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  workers_.clear();  // joins
}

void Loader::start_epoch(int epoch) {
  std::unique_lock lock(mutex_);
  epoch_active_ = false;
  idle_.wait(lock, [this] { return in_flight_ == 0; });
  ready_.clear();
  next_to_make_ = next_to_hand_ = 0;
  failure_ = nullptr;
  epoch_seed_ = mix_seed(options_.seed, uint64_t(epoch));
  items_.clear();
  if (options_.mode == Mode::train) {
    for (size_t v = 0; v < source_.size(); ++v)
      items_.push_back({int32_t(v), 0});
    seeded_shuffle(items_, epoch_seed_);
  } else {
    for (size_t v = 0; v < source_.size(); ++v) {
      const size_t windows = plan_eval_clips(recipe_, std::max(1, source_.frame_count(v))).size();
      for (size_t w = 0; w < windows; ++w)
        items_.push_back({int32_t(v), int32_t(w)});
    }
  }
  take_share();
  epoch_active_ = true;
  lock.unlock();
  work_ready_.notify_all();
}

void Loader::take_share() {
  if (options_.world == 1) return;
  std::vector<Item> all = std::move(items_);
  items_.clear();
  if (options_.mode == Mode::train) {
    padded_ = int64_t(train_padding(all.size(), options_.world));
    for (size_t position :
         train_share(all.size(), options_.batch_size, options_.rank, options_.world))
      items_.push_back(all[position % all.size()]);
    return;
  }
  for (const Item& item : all)
    if (item.video % options_.world == options_.rank) items_.push_back(item);
}

int64_t Loader::batches_per_epoch() const {
  const int64_t items = int64_t(items_.size()), size = options_.batch_size;
  return options_.drop_last ? items / size : (items + size - 1) / size;
}

std::optional<Batch> Loader::next() {
  std::unique_lock lock(mutex_);
  CU3D_CHECK(epoch_active_, "loader: call start_epoch before next");
  if (next_to_hand_ >= batches_per_epoch()) return std::nullopt;
  batch_ready_.wait(lock, [this] { return failure_ || ready_.count(next_to_hand_); });
  if (failure_) std::rethrow_exception(failure_);
  Batch batch = std::move(ready_.extract(next_to_hand_).mapped());
  ++next_to_hand_;
  lock.unlock();
  work_ready_.notify_all();
  return batch;
}

void Loader::recycle(Batch&& batch) {
  const std::lock_guard lock(mutex_);
  if (free_buffers_.size() < size_t(options_.prefetch + options_.workers))
    free_buffers_.push_back(std::move(batch.clips));
}

void Loader::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [this] {
      return stopping_ || (epoch_active_ && !failure_ && next_to_make_ < batches_per_epoch() &&
                           next_to_make_ < next_to_hand_ + options_.prefetch);
    });
    if (stopping_) return;
    const int64_t index = next_to_make_++;
    const uint64_t epoch_seed = epoch_seed_;
    ++in_flight_;
    lock.unlock();
    std::optional<Batch> batch;
    std::exception_ptr failure;
    try {
      batch = make_batch(index, epoch_seed);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    --in_flight_;
    if (failure && !failure_) failure_ = failure;
    if (batch && epoch_active_) ready_.emplace(index, std::move(*batch));
    batch_ready_.notify_all();
    idle_.notify_all();
  }
}

Batch Loader::make_batch(int64_t index, uint64_t epoch_seed) {
  Batch batch;
  batch.index = index;
  batch.clip_shape = clip_shape(recipe_);
  {
    const std::lock_guard lock(mutex_);
    if (!free_buffers_.empty()) {
      batch.clips = std::move(free_buffers_.back());
      free_buffers_.pop_back();
    }
  }
  batch.clips.resize(clip_bytes_ * size_t(options_.batch_size));
  const size_t first = size_t(index) * size_t(options_.batch_size);
  const size_t last = std::min(items_.size(), first + size_t(options_.batch_size));
  Clip scratch;
  for (size_t i = first; i < last; ++i) {
    uint8_t* out = batch.clips.data() + size_t(batch.size) * clip_bytes_;
    if (!cut_item(items_[i], epoch_seed, scratch, out)) continue;
    batch.labels.push_back(source_.label(size_t(items_[i].video)));
    batch.videos.push_back(items_[i].video);
    ++batch.size;
  }
  batch.clips.resize(clip_bytes_ * size_t(batch.size));
  return batch;
}

bool Loader::cut_item(const Item& item, uint64_t epoch_seed, Clip& scratch, uint8_t* out) {
  const auto plan_for = [&](int frame_count) {
    if (options_.mode == Mode::train)
      return plan_train_clip(recipe_, frame_count, mix_seed(epoch_seed, uint64_t(item.video)));
    // The read may find fewer frames than the container declared: keep the last window that fits.
    std::vector<ClipPlan> plans = plan_eval_clips(recipe_, frame_count);
    return std::move(plans[std::min(size_t(item.window), plans.size() - 1)]);
  };
  ClipPlan plan;
  const std::optional<FrameView> frames =
      source_.planned_frames(size_t(item.video), plan_for, plan, scratch);
  if (!frames) return false;
  looped_ += plan.looped;
  cut_clip(*frames, recipe_, plan, out);
  return true;
}

}  // namespace cu3d::data
