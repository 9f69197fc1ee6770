// Learning-rate schedules: the rate for step t (0-based, in whatever unit the caller advances:
// optimizer steps or epochs), set on the optimizer before each update with
// `optimizer.set_lr(schedule.at(t))`. Every schedule may start with a linear warm-up from
// lr / warmup to lr over its first `warmup` steps; the main schedule then runs on t - warmup.
#pragma once

#include <cstdint>
#include <string>

namespace cu3d {

class LrSchedule {
 public:
  // lr throughout.
  static LrSchedule constant(double lr, int64_t warmup = 0);
  // lr * gamma^floor(t / step_size) (torch.optim.lr_scheduler.StepLR).
  static LrSchedule step(double lr, int64_t step_size, double gamma, int64_t warmup = 0);
  // min_lr + (lr - min_lr) * (1 + cos(pi * t / (total - warmup))) / 2, reaching min_lr at
  // t = total - warmup and staying there (CosineAnnealingLR's first half-period).
  static LrSchedule cosine(double lr, int64_t total, double min_lr = 0, int64_t warmup = 0);

  double at(int64_t t) const;
  std::string str() const;  // e.g. "cosine(lr=0.001, total=1000, min_lr=0, warmup=100)"

 private:
  enum class Kind { constant, step, cosine };
  LrSchedule(Kind kind, double lr, int64_t warmup);

  Kind kind_;
  double lr_;
  int64_t warmup_;
  int64_t step_size_ = 1;
  double gamma_ = 1;
  int64_t total_ = 1;
  double min_lr_ = 0;
};

}  // namespace cu3d
