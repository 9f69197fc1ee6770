#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/philox.h"

namespace cu3d {
namespace {

struct PhiloxKnownAnswer {
  Philox4x32Counter counter;
  Philox4x32Key key;
  Philox4x32Counter expected;
};

// Philox4x32-10 lines of Random123's kat_vectors (counter, key, expected output).
constexpr PhiloxKnownAnswer kKnownAnswers[] = {
    {{{0x00000000, 0x00000000, 0x00000000, 0x00000000}},
     {{0x00000000, 0x00000000}},
     {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
    {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
     {{0xffffffff, 0xffffffff}},
     {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
    {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
     {{0xa4093822, 0x299f31d0}},
     {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
};

TEST(Philox, MatchesRandom123KnownAnswers) {
  for (const auto& kat : kKnownAnswers) {
    const Philox4x32Counter got = philox4x32_10(kat.counter, kat.key);
    for (int lane = 0; lane < 4; ++lane)
      EXPECT_EQ(got.v[lane], kat.expected.v[lane]);
  }
}

// Element i of stream (seed, offset) is lane i % 4 of the block with counter
// (i / 4 as two words, offset as two words) under key (seed as two words).
TEST(Philox, ElementIndexMapsToCounterAndLane) {
  const uint64_t seed = 0x0123456789abcdefull, offset = 0xfedcba9876543210ull;
  for (uint64_t index : {uint64_t(0), uint64_t(5), uint64_t(1023), (uint64_t(7) << 34) + 2}) {
    const uint64_t block = index / 4;
    const Philox4x32Counter c = {
        {uint32_t(block), uint32_t(block >> 32), 0x76543210u, 0xfedcba98u}};
    const Philox4x32Key k = {{0x89abcdefu, 0x01234567u}};
    EXPECT_EQ(philox_u32_at(seed, offset, index), philox4x32_10(c, k).v[index % 4]) << index;
  }
}

TEST(Philox, StreamsDifferBySeedAndOffset) {
  int same_seed = 0, same_offset = 0;
  for (uint64_t i = 0; i < 256; ++i) {
    same_seed += philox_u32_at(1, 0, i) == philox_u32_at(2, 0, i);
    same_offset += philox_u32_at(1, 0, i) == philox_u32_at(1, 1, i);
  }
  EXPECT_EQ(same_seed, 0);
  EXPECT_EQ(same_offset, 0);
}

TEST(Philox, DropoutThresholdIsFloorOfPTimes2To32) {
  EXPECT_EQ(dropout_threshold(0.0), 0u);
  EXPECT_EQ(dropout_threshold(0.5), 0x80000000u);
  EXPECT_EQ(dropout_threshold(0.25), 0x40000000u);
  EXPECT_EQ(dropout_threshold(0.9999999999), 0xffffffffu);
  EXPECT_TRUE(dropout_keeps(0u, dropout_threshold(0.0)));
  EXPECT_FALSE(dropout_keeps(0x7fffffffu, dropout_threshold(0.5)));
  EXPECT_TRUE(dropout_keeps(0x80000000u, dropout_threshold(0.5)));
}

}  // namespace
}  // namespace cu3d
