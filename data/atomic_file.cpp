#include "data/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include "kernels/error.h"

namespace cu3d::data {
namespace {

// Flushes a finished file (or a folder, for the rename in it) to the disk, so that a power cut
// after the rename cannot leave a complete-looking shard of zeros. Best effort: some file systems
// refuse fsync on a folder, and the data is then as safe as they make it.
void fsync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.empty() ? "." : path.c_str(), flags);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::filesystem::path temporary_path(const std::filesystem::path& path) {
  return path.string() + ".tmp";
}

void commit_temporary(const std::filesystem::path& path) {
  fsync_path(temporary_path(path), O_RDONLY);
  std::error_code error;
  std::filesystem::rename(temporary_path(path), path, error);
  CU3D_CHECK(!error, "{}: cannot rename the finished temporary file into place: {}", path.string(),
             error.message());
  fsync_path(path.parent_path(), O_RDONLY | O_DIRECTORY);
}

}  // namespace cu3d::data
