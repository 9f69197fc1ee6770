// Philox-4x32-10, the counter-based generator of Salmon et al., "Parallel Random Numbers: As
// Easy as 1, 2, 3" (SC'11), as used by cuRAND and PyTorch. Its output is a pure function of a
// 128-bit counter and a 64-bit key, so any element's random bits can be computed on its own,
// on the host or in a CUDA thread, in any order: a dropout mask is a function of
// (seed, offset, element index), identical on CPU and GPU, and the backward pass recomputes it
// instead of storing it.
//
// Cost: one block is 10 rounds of two 32x32->64 multiplies and a few XORs, ~40 integer ops
// for 4 x 32 random bits; no memory traffic.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace cu3d {

struct Philox4x32Counter {
  uint32_t v[4];
};
struct Philox4x32Key {
  uint32_t v[2];
};

// The round multipliers and the Weyl key increments (golden ratio and sqrt(3) - 1) of the
// reference implementation (Random123's philox.h).
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

CU3D_HOST_DEVICE inline Philox4x32Counter philox4x32_round(Philox4x32Counter c, Philox4x32Key k) {
  const uint64_t p0 = uint64_t(kPhiloxM0) * c.v[0];
  const uint64_t p1 = uint64_t(kPhiloxM1) * c.v[2];
  const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
  const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
  return {{hi1 ^ c.v[1] ^ k.v[0], lo1, hi0 ^ c.v[3] ^ k.v[1], lo0}};
}

// The full 10-round bijection of the counter under the key.
CU3D_HOST_DEVICE inline Philox4x32Counter philox4x32_10(Philox4x32Counter c, Philox4x32Key k) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k.v[0] += kPhiloxW0;
      k.v[1] += kPhiloxW1;
    }
    c = philox4x32_round(c, k);
  }
  return c;
}

// The stream (seed, offset): the key is the seed and the counter is (block, offset), so that
// block b holds the random words of elements 4b .. 4b+3. Different offsets give disjoint
// streams: the engine advances the offset per random op.
CU3D_HOST_DEVICE inline Philox4x32Counter philox_block_at(uint64_t seed, uint64_t offset,
                                                          uint64_t block) {
  const Philox4x32Counter c = {
      {uint32_t(block), uint32_t(block >> 32), uint32_t(offset), uint32_t(offset >> 32)}};
  const Philox4x32Key k = {{uint32_t(seed), uint32_t(seed >> 32)}};
  return philox4x32_10(c, k);
}

// The random 32-bit word of element `index` of the stream (seed, offset): lane index % 4 of
// block index / 4. A loop (or a CUDA thread) over four consecutive elements should call
// philox_block_at once instead.
CU3D_HOST_DEVICE inline uint32_t philox_u32_at(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_block_at(seed, offset, index >> 2).v[index & 3];
}

// Dropout masks. An element is dropped when its random word is below floor(p * 2^32), so the
// keep probability is 1 - p to within 2^-32; comparing integers (not floats) makes the CPU and
// CUDA masks bit-identical. Requires 0 <= p < 1 (the caller checks).
CU3D_HOST_DEVICE inline uint32_t dropout_threshold(double p) {
  return uint32_t(p * 4294967296.0);
}

CU3D_HOST_DEVICE inline bool dropout_keeps(uint32_t random_word, uint32_t threshold) {
  return random_word >= threshold;
}

}  // namespace cu3d
