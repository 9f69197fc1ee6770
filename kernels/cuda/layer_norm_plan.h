// How the resident per-sample layer norm (kernels/cuda/layer_norm.cu, "resident in shared
// memory") splits a batch over teams of blocks: host arithmetic only, in a header of its own so
// that the CPU suite checks the plans on an H100's numbers without a GPU
// (tests/cpu/test_layer_norm_plan.cpp).
#pragma once

#include <algorithm>
#include <cstdint>

namespace cu3d::cuda {

constexpr int kResidentThreads = 256;
constexpr int kResidentGrain = kResidentThreads;  // float4s: a slice is whole 1024-element runs
constexpr int kResidentStaticShared = 1024;       // block_sum2's and team_sum's, with room

// `team` blocks per sample, each a slice of `slice_vecs` float4s of each array (a multiple of
// kResidentGrain), of which it holds the first `held_vecs` in `shared_bytes` of shared memory:
// all of it where the blocks the device holds at once take a sample, else the rest is read from
// memory twice. `teams` teams take the samples in turn. team 0: no plan.
struct ResidentPlan {
  int slice_vecs = 0, held_vecs = 0, team = 0, teams = 0, shared_bytes = 0;
  bool fits() const { return team > 0; }
  bool partly_held() const { return held_vecs < slice_vecs; }
  int blocks() const { return team * teams; }
};

// The plan for `groups` samples of `size4` float4s in each of `arrays` arrays (x; backward x and
// dy) on a device of `multiprocessors` SMs whose blocks may take `max_shared` bytes of shared
// memory; resident(bytes, partly_held) says how many blocks of the kernel that holds all its
// slice (or of the partly held one) with that much dynamic shared memory the device holds at once.
// As few blocks per sample as shared memory allows, but spread over at least the SMs the batch
// leaves each sample (and no slice under 16 KB); as many teams as the device holds at once, evened
// over the rounds they take. A sample larger than the shared memory of all the blocks the device
// holds goes to one team of all of them, each holding what its shared memory takes of its slice.
template <class Resident>
ResidentPlan plan_resident(int64_t size4, int64_t groups, int arrays, int multiprocessors,
                           int max_shared, Resident resident) {
  const auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  const int64_t capacity =
      (max_shared - kResidentStaticShared) / (16 * arrays) / kResidentGrain * kResidentGrain;
  if (capacity <= 0) return {};
  const int64_t fewest = ceil_div(size4, capacity);
  const int64_t spread =
      std::min(ceil_div(multiprocessors, groups), ceil_div(size4, 4 * kResidentGrain));
  // Spread where the device holds that many blocks at once, else as few as shared memory allows.
  for (const int64_t wanted : {std::max(fewest, spread), fewest}) {
    const int64_t slice = ceil_div(ceil_div(size4, wanted), kResidentGrain) * kResidentGrain;
    const int64_t team = ceil_div(size4, slice);
    const int shared_bytes = int(slice * 16 * arrays);
    const int64_t blocks = resident(shared_bytes, false);
    if (team > blocks) continue;
    const int64_t rounds = ceil_div(groups, blocks / team);
    return {int(slice), int(slice), int(team), int(ceil_div(groups, rounds)), shared_bytes};
  }
  const int shared_bytes = int(capacity * 16 * arrays);
  const int64_t blocks = resident(shared_bytes, true);
  if (blocks == 0) return {};
  const int64_t slice = ceil_div(ceil_div(size4, blocks), kResidentGrain) * kResidentGrain;
  return {int(slice), int(capacity), int(ceil_div(size4, slice)), 1, shared_bytes};
}

}  // namespace cu3d::cuda
