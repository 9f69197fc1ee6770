// Train/test splits made here, for datasets without an official list.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace cu3d::data {

struct TrainTest {
  std::vector<VideoEntry> train;
  std::vector<VideoEntry> test;
};

// Whole groups go to test, in a seeded order, while every class they hold is still below its
// target of round(test_fraction x its clips); the rest train. No group lands on both sides, and
// each class gets close to its share (exactly, when groups are single clips).
TrainTest split_by_group(std::vector<VideoEntry> entries, int classes, double test_fraction,
                         uint64_t seed);

// Each class's clips shuffled and cut at test_fraction, ignoring groups. Leaks near-duplicate
// clips across the split; load_dataset only uses it on request, with a warning.
TrainTest split_by_clip(std::vector<VideoEntry> entries, int classes, double test_fraction,
                        uint64_t seed);

}  // namespace cu3d::data
