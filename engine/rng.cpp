#include "engine/rng.h"

#include <cmath>
#include <numbers>

#include "kernels/error.h"

namespace cu3d {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

void Generator::seed_with(uint64_t seed) {
  for (uint64_t& word : state_)
    word = splitmix64(seed);
}

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double Generator::uniform() {
  return double(next_u64() >> 11) * 0x1.0p-53;
}

double Generator::uniform(double low, double high) {
  return low + (high - low) * uniform();
}

double Generator::normal(double mean, double stddev) {
  const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
  const double u2 = uniform();
  return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

uint64_t Generator::below(uint64_t bound) {
  CU3D_CHECK(bound > 0, "Generator::below needs a positive bound");
  // Rejection sampling: drop the top partial range so every value is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do
    x = next_u64();
  while (x >= limit);
  return x % bound;
}

}  // namespace cu3d
