#include "data/group_split.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "data/random.h"

namespace cu3d::data {
namespace {

std::vector<int> test_targets(const std::vector<VideoEntry>& entries, int classes,
                              double test_fraction) {
  std::vector<int> counts(size_t(classes), 0);
  for (const VideoEntry& entry : entries)
    ++counts[size_t(entry.label)];
  std::vector<int> targets;
  for (int count : counts)
    targets.push_back(int(std::lround(test_fraction * count)));
  return targets;
}

// A group goes to test when each of its classes is still below its target and keeps at least
// one training clip after the move.
bool group_fits(const std::vector<VideoEntry>& entries, const std::vector<size_t>& group,
                const std::vector<int>& targets, const std::vector<int>& totals,
                const std::vector<int>& tested) {
  std::map<int, int> moved;
  for (size_t i : group)
    ++moved[entries[i].label];
  return std::all_of(moved.begin(), moved.end(), [&](const std::pair<const int, int>& entry) {
    const size_t label = size_t(entry.first);
    return tested[label] < targets[label] && tested[label] + entry.second < totals[label];
  });
}

bool by_path(const VideoEntry& a, const VideoEntry& b) {
  return a.path < b.path;
}

}  // namespace

TrainTest split_by_group(std::vector<VideoEntry> entries, int classes, double test_fraction,
                         uint64_t seed) {
  std::sort(entries.begin(), entries.end(), by_path);
  std::map<std::string, std::vector<size_t>> members;  // sorted keys: a seed means one order
  for (size_t i = 0; i < entries.size(); ++i)
    members[entries[i].group].push_back(i);
  std::vector<const std::vector<size_t>*> groups;
  for (const auto& [name, indices] : members)
    groups.push_back(&indices);
  seeded_shuffle(groups, seed);

  const std::vector<int> targets = test_targets(entries, classes, test_fraction);
  const std::vector<int> totals = test_targets(entries, classes, 1.0);
  std::vector<int> tested(size_t(classes), 0);
  std::vector<bool> in_test(entries.size(), false);
  for (const std::vector<size_t>* group : groups) {
    if (!group_fits(entries, *group, targets, totals, tested)) continue;
    for (size_t i : *group) {
      in_test[i] = true;
      ++tested[size_t(entries[i].label)];
    }
  }
  TrainTest split;
  for (size_t i = 0; i < entries.size(); ++i)
    (in_test[i] ? split.test : split.train).push_back(std::move(entries[i]));
  return split;
}

TrainTest split_by_clip(std::vector<VideoEntry> entries, int classes, double test_fraction,
                        uint64_t seed) {
  std::sort(entries.begin(), entries.end(), by_path);
  const std::vector<int> targets = test_targets(entries, classes, test_fraction);
  seeded_shuffle(entries, seed);
  std::vector<int> tested(size_t(classes), 0);
  TrainTest split;
  for (VideoEntry& entry : entries) {
    int& count = tested[size_t(entry.label)];
    const bool to_test = count < targets[size_t(entry.label)];
    count += to_test;
    (to_test ? split.test : split.train).push_back(std::move(entry));
  }
  std::sort(split.train.begin(), split.train.end(), by_path);
  std::sort(split.test.begin(), split.test.end(), by_path);
  return split;
}

}  // namespace cu3d::data
