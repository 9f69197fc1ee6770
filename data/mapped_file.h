// A read-only memory mapping of a whole file (RAII). Shards are read through it, so a clip costs
// page faults on its own bytes only, and the page cache is shared by every loader thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace cu3d::data {

class MappedFile {
 public:
  // Maps the file; an empty file maps to size 0 and a null data pointer. Throws cu3d::Error naming
  // the file when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cu3d::data
