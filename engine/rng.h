// The run's random number generator: xoshiro256** seeded through splitmix64. Small state (four
// words) so checkpoints can store it and a resumed run draws exactly the same numbers.
#pragma once

#include <array>
#include <cstdint>

namespace cu3d {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);

  uint64_t next_u64();
  double uniform();                           // [0, 1)
  double uniform(double low, double high);    // [low, high)
  double normal(double mean, double stddev);  // Box-Muller
  uint64_t below(uint64_t bound);             // uniform integer in [0, bound), unbiased

  using State = std::array<uint64_t, 4>;
  State state() const { return state_; }
  void set_state(const State& state) { state_ = state; }

 private:
  State state_{};
};

}  // namespace cu3d
