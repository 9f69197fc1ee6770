// Streamed files that are either complete or absent: a shard's frames are written to
// "<name>.tmp" in the same folder and renamed, which POSIX makes atomic, so an interrupted prep
// never leaves a half-written shard for the next run to trust (and the next run overwrites the
// same temporary); the file is fsync'ed before the rename and the folder after. Whole-content files
// (manifest, index, split lists) use engine/atomic_file.h.
#pragma once

#include <filesystem>

namespace cu3d::data {

// The temporary name used for `path` while it is being written.
std::filesystem::path temporary_path(const std::filesystem::path& path);

// Renames the finished temporary file onto `path`.
void commit_temporary(const std::filesystem::path& path);

}  // namespace cu3d::data
