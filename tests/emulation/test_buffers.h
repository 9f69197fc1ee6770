// The output checks the emulation tests of the memory-bound ops share: outputs poisoned before
// each call with untouched guards around them, a run in every schedule of the block emulator
// (whose outputs must agree bit for bit), and the comparisons with the CPU references.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "block.h"

namespace cu3d::emu_test {

constexpr uint32_t kPoison = 0x7fbadbad;
constexpr int kGuard = 4;  // floats of guard on each side of an output

inline float poison() {
  float f;
  std::memcpy(&f, &kPoison, 4);
  return f;
}
inline bool is_poison(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u == kPoison;
}

// An output of `size` floats with guards around it, poisoned. `offset` 1 moves the data off its
// 16-byte alignment, which sends the ops down their scalar paths.
struct Buffer {
  std::vector<float> storage;
  int offset = 0;
  Buffer(size_t size, int offset_ = 0) : storage(size + 2 * kGuard + 4), offset(offset_) {}
  float* data() { return storage.data() + kGuard + offset; }
  size_t size() const { return storage.size() - 2 * kGuard - 4; }
  void poison_all() {
    for (float& f : storage)
      f = poison();
  }
  bool guards_intact() const {
    for (int i = 0; i < kGuard + offset; ++i)
      if (!is_poison(storage[i])) return false;
    for (size_t i = kGuard + offset + size(); i < storage.size(); ++i)
      if (!is_poison(storage[i])) return false;
    return true;
  }
  std::vector<float> values() { return {data(), data() + size()}; }
};

// Runs `op` once per schedule; expects no fault, intact guards, and the same bits every time.
// Returns the in-order run's outputs. The concurrent schedule runs each block's threads in a
// random order too, so it stands in for Schedule::random.
inline std::vector<std::vector<float>> in_every_schedule(
    const std::function<std::vector<std::vector<float>>()>& op) {
  const emu::Schedule schedules[] = {emu::Schedule::in_order, emu::Schedule::reversed,
                                     emu::Schedule::concurrent};
  std::vector<std::vector<float>> first;
  for (emu::Schedule schedule : schedules) {
    SCOPED_TRACE("schedule " + std::to_string(int(schedule)));
    emu::reset_report();
    emu::set_launch_schedule(schedule, 99);
    const std::vector<std::vector<float>> out = op();
    EXPECT_EQ(emu::report().total_faults(), 0) << emu::report().summary();
    EXPECT_GT(emu::launches(), 0);
    if (first.empty()) {
      first = out;
      continue;
    }
    for (size_t k = 0; k < out.size(); ++k)
      EXPECT_TRUE(
          out[k].size() == first[k].size() &&
          (out[k].empty() || std::memcmp(out[k].data(), first[k].data(), 4 * out[k].size()) == 0))
          << "output " << k << " differs from the in-order run";
  }
  emu::set_launch_schedule(emu::Schedule::in_order);
  return first;
}

// ‖got − want‖ / ‖want‖ (a poisoned value counts as a miss of 1e30).
template <class T>
double relative_error(const std::vector<float>& got, const std::vector<T>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = is_poison(got[i]) ? 1e30 : double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline long bit_mismatches(const std::vector<float>& got, const std::vector<float>& want) {
  long bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]) && !is_poison(got[i]);
    bad += !both_nan && std::memcmp(&got[i], &want[i], 4) != 0;
  }
  return bad;
}

}  // namespace cu3d::emu_test
