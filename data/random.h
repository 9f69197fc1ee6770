// Seeded randomness for the data pipeline that gives the same numbers on every platform and
// standard library: std::shuffle and std::uniform_*_distribution are implementation-defined, and
// a dataset split or an epoch order must not change when the compiler does.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace cu3d::data {

// splitmix64 finalizer: mixes a seed with a stream id (class, clip, epoch...) into an independent
// seed, so parallel producers draw the same numbers whatever thread runs them.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A small counter-based generator: each draw is mix_seed(seed, n++).
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : seed_(seed) {}
  uint64_t next() { return mix_seed(seed_, counter_++); }
  // Uniform in [lo, hi) from the top 53 bits.
  double uniform(double lo, double hi) { return lo + (hi - lo) * double(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n); n > 0. The modulo bias is below 2^-40 for any n we use.
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

// Fisher-Yates with SeededRandom: the same permutation for the same seed everywhere.
template <class T>
void seeded_shuffle(std::vector<T>& items, uint64_t seed) {
  SeededRandom random(seed);
  for (size_t i = items.size(); i > 1; --i)
    std::swap(items[i - 1], items[random.below(i)]);
}

}  // namespace cu3d::data
