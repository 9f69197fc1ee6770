// TensorBoard event files, written without TensorFlow: a TFRecord stream (each record: u64
// length, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes) of `Event`
// protobufs (tensorflow/core/util/event.proto: wall_time, step, file_version or a `Summary` of
// simple_value scalars and PNG images). `tensorboard --logdir RUN` reads the run folder.
//
// Unlike the run's other files an event file is not written atomically: TensorBoard tails it
// while it grows. Each writer opens a new file, events.out.tfevents.<seconds>.<host>, so a
// resumed run adds a file beside the first and TensorBoard merges them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apps/model_io.h"

namespace cu3d::apps {

// CRC-32C (Castagnoli), as TFRecord frames use it.
uint32_t crc32c(std::string_view bytes);
// TFRecord's masked form: rotated right by 15 bits plus a constant, so a CRC over data that
// itself holds CRCs stays well distributed.
uint32_t masked_crc32c(std::string_view bytes);

class EventWriter {
 public:
  // Creates `dir` if needed and the file, starting with the file_version event.
  explicit EventWriter(const std::filesystem::path& dir);

  // One event holding all `values` (tag, value) at `step`.
  void scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step);
  // A PNG (already encoded) as an image summary.
  void image(const std::string& tag, std::string_view png, int64_t step);
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& event);

  std::filesystem::path path_;
  std::ofstream file_;
};

// What `cu3d train` logs (apps/trainer.cpp calls these three hooks):
//   train/loss, train/accuracy, train/learning_rate, train/clips_per_second  means over each
//     kStepsPerLog optimizer steps, at the global step;
//   epoch/loss, epoch/accuracy, epoch/val_loss, epoch/val_accuracy (clip top-1),
//     epoch/val_top5, epoch/val_video_top1, epoch/val_video_top5, epoch/learning_rate,
//     epoch/clips_per_second, and the image confusion_matrix, at the epoch number (1-based).
class TrainingEvents {
 public:
  static constexpr int64_t kStepsPerLog = 10;

  explicit TrainingEvents(const std::filesystem::path& dir) : writer_(dir) {}

  void start_epoch();
  void on_step(int64_t step, int64_t clips, double loss, int64_t correct, double lr);
  // `confusion_png`: the confusion matrix PNG the trainer has just written.
  void on_epoch(int epoch, double loss, double accuracy, const EvalResult& eval, double lr,
                const std::filesystem::path& confusion_png);
  const std::filesystem::path& path() const { return writer_.path(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Window {
    int64_t steps = 0, clips = 0, correct = 0;
    double loss_sum = 0, seconds = 0;
  };

  EventWriter writer_;
  Clock::time_point last_ = Clock::now();
  Window window_, epoch_;
};

}  // namespace cu3d::apps
