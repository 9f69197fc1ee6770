#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/error.h"

namespace cu3d {

LrSchedule::LrSchedule(Kind kind, double lr, int64_t warmup)
    : kind_(kind), lr_(lr), warmup_(warmup) {
  CU3D_CHECK(std::isfinite(lr) && lr >= 0 && warmup >= 0,
             "LrSchedule: lr {} must be finite and >= 0, warmup {} >= 0", lr, warmup);
}

LrSchedule LrSchedule::constant(double lr, int64_t warmup) {
  return LrSchedule(Kind::constant, lr, warmup);
}

LrSchedule LrSchedule::step(double lr, int64_t step_size, double gamma, int64_t warmup) {
  CU3D_CHECK(step_size >= 1 && gamma > 0,
             "LrSchedule::step: step_size {} must be >= 1 and gamma {} positive", step_size, gamma);
  LrSchedule s(Kind::step, lr, warmup);
  s.step_size_ = step_size;
  s.gamma_ = gamma;
  return s;
}

LrSchedule LrSchedule::cosine(double lr, int64_t total, double min_lr, int64_t warmup) {
  CU3D_CHECK(total > warmup && min_lr >= 0 && min_lr <= lr,
             "LrSchedule::cosine: total {} must exceed warmup {}, and min_lr {} lie in [0, lr={}]",
             total, warmup, min_lr, lr);
  LrSchedule s(Kind::cosine, lr, warmup);
  s.total_ = total;
  s.min_lr_ = min_lr;
  return s;
}

double LrSchedule::at(int64_t t) const {
  CU3D_CHECK(t >= 0, "LrSchedule: step {} is negative", t);
  if (t < warmup_) return lr_ * double(t + 1) / double(warmup_);
  const int64_t u = t - warmup_;
  switch (kind_) {
    case Kind::constant:
      return lr_;
    case Kind::step:
      return lr_ * std::pow(gamma_, double(u / step_size_));
    case Kind::cosine: {
      const double progress = std::min(1.0, double(u) / double(total_ - warmup_));
      return min_lr_ + (lr_ - min_lr_) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
    }
  }
  return lr_;
}

std::string LrSchedule::str() const {
  switch (kind_) {
    case Kind::constant:
      return fmt::format("constant(lr={}, warmup={})", lr_, warmup_);
    case Kind::step:
      return fmt::format("step(lr={}, step_size={}, gamma={}, warmup={})", lr_, step_size_, gamma_,
                         warmup_);
    case Kind::cosine:
      return fmt::format("cosine(lr={}, total={}, min_lr={}, warmup={})", lr_, total_, min_lr_,
                         warmup_);
  }
  return "";
}

}  // namespace cu3d
