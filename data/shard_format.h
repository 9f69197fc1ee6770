// Names and small helpers shared by the shard writer and reader (see shard.h for the format).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/recipe.h"

namespace cu3d::data {

// Version 2 added JPEG frames ("frame_format"); version 1 shards are raw and still read.
constexpr int kShardFormatVersion = 2;
constexpr int kOldestShardFormatVersion = 1;
constexpr const char* kManifestFormat = "cu3d-shards";
constexpr const char* kIndexFormat = "cu3d-shard-index";

inline std::string shard_name(int k) {
  return fmt::format("shard-{:05d}", k);
}
inline std::filesystem::path shard_bin(const std::filesystem::path& folder,
                                       const std::string& name) {
  return folder / (name + ".bin");
}
inline std::filesystem::path shard_index(const std::filesystem::path& folder,
                                         const std::string& name) {
  return folder / (name + ".json");
}

// Checksums travel as 16 hex digits: JSON readers in other languages lose 64-bit integers.
inline std::string checksum_text(uint64_t checksum) {
  return fmt::format("{:016x}", checksum);
}

// The recipe as the shards were decoded with it: the mean is filled in afterwards, so it is left
// out when deciding whether an existing shard can be reused.
inline nlohmann::json decode_key(const Recipe& recipe) {
  Recipe copy = recipe;
  copy.mean.clear();
  return recipe_to_json(copy);
}

// A JPEG video's frame table: T+1 little-endian uint64 offsets from the video's start, entry t
// where frame t begins and entry T the video's size.
constexpr size_t kFrameTableEntry = sizeof(uint64_t);

inline void put_le64(uint64_t value, uint8_t* out) {
  for (int i = 0; i < 8; ++i)
    out[i] = uint8_t(value >> (8 * i));
}

// Entry `index` of a table at `table`; memcpy-free byte reads, as the mapped table has no
// alignment.
inline uint64_t get_le64(const uint8_t* table, size_t index) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= uint64_t(table[index * kFrameTableEntry + size_t(i)]) << (8 * i);
  return value;
}

}  // namespace cu3d::data
