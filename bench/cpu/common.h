// What the CPU kernel benchmarks share: seeded inputs and rate counters.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

namespace cu3d::cpu {

// `size` uniform values in [-1, 1), the same for the same seed.
inline std::vector<float> random_floats(int64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(size);
  for (float& e : v)
    e = dist(rng);
  return v;
}

// FLOP/s (or B/s) counters from the work of one iteration.
inline void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

inline void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["B/s"] =
      benchmark::Counter(bytes_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace cu3d::cpu
