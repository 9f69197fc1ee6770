// 64-bit FNV-1a over bytes: recorded per video in the shard index and per shard in the manifest,
// and over the tensors of a checkpoint, to detect truncated or altered files. Not cryptographic;
// these files are hostile input, so every size and offset is still validated independently. About
// 1 GB/s: far below decode cost, and about a second for a C3D checkpoint with Adam's state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cu3d {

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;

// Continues the hash `state` over `size` bytes; start from kFnvOffsetBasis.
inline uint64_t fnv1a64(const uint8_t* bytes, size_t size, uint64_t state = kFnvOffsetBasis) {
  for (size_t i = 0; i < size; ++i)
    state = (state ^ bytes[i]) * 0x100000001b3ull;
  return state;
}

}  // namespace cu3d
