// Checkpoint tensors in the safetensors format (https://github.com/huggingface/safetensors), so
// PyTorch, JAX and others can read what cu3d writes and the other way round:
//   8 bytes   little-endian u64 N, the header length
//   N bytes   JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//                    "__metadata__": {"<key>": "<string>"}}
//   rest      the tensors' bytes, offsets relative to its start, in row-major order
// Files are parsed as hostile: every length and offset is checked against the file before
// anything is allocated or read, and errors name the file and the field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "engine/tensor.h"

namespace cu3d {

struct SafetensorsContents {
  NamedTensors tensors;  // in file order
  std::map<std::string, std::string> metadata;
};

// Writes atomically (temporary file, fsync, rename). Tensors may live on any device.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor into CPU memory.
SafetensorsContents load_safetensors(const std::filesystem::path& path);

// Parses a whole file held in memory; `name` is used in error messages. (The fuzz target's entry.)
SafetensorsContents parse_safetensors(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace cu3d
