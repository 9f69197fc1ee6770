// Files that are either complete or absent. Contents go to a temporary file in the same folder,
// which is flushed and fsync'ed, then renamed over the target (atomic on POSIX), and the folder
// is fsync'ed so the rename itself survives a power cut. A run killed at any moment leaves either
// the previous file or the new one, never a torn one. (For tests only: CU3D_TEST_SLOW_COMMIT_MS=N
// sleeps N ms between the finished temporary and the rename, so a kill can land in between.)
#pragma once

#include <filesystem>
#include <functional>
#include <string_view>

namespace cu3d {

// Calls `write(file)` to fill a temporary file, then commits it as `path`. On any failure (a
// full disk, an exception from `write`) the temporary is removed, `path` is left untouched, and
// cu3d::Error names the file.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(std::FILE* file)>& write);
void write_atomically(const std::filesystem::path& path, std::string_view contents);

// Removes the temporaries that killed writers left in `folder` ("<file>.tmp<pid>" whose process
// no longer runs); returns how many. A live writer's temporary is kept.
int remove_stale_temporaries(const std::filesystem::path& folder);

// Writes all of `bytes` or throws naming `path` (for use inside `write_atomically`).
void write_bytes(std::FILE* file, const void* bytes, std::size_t size,
                 const std::filesystem::path& path);

}  // namespace cu3d
