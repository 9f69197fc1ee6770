// Names and small helpers shared by the shard writer and reader (see shard.h for the format).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/recipe.h"

namespace cu3d::data {

constexpr int kShardFormatVersion = 1;
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

}  // namespace cu3d::data
