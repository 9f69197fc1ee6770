// Files that are either complete or absent: written to "<name>.tmp" in the same folder and
// renamed, which POSIX makes atomic, so an interrupted run never leaves a half-written manifest,
// index or split list for the next run to trust.
#pragma once

#include <filesystem>
#include <string_view>

namespace cu3d::data {

// Writes `contents` to `path` through a temporary file and a rename; throws cu3d::Error naming the
// file when the disk refuses.
void write_file_atomically(const std::filesystem::path& path, std::string_view contents);

// The temporary name used for `path` while it is being written.
std::filesystem::path temporary_path(const std::filesystem::path& path);

// Renames the finished temporary file onto `path`.
void commit_temporary(const std::filesystem::path& path);

}  // namespace cu3d::data
