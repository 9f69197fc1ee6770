#include "data/atomic_file.h"

#include "kernels/error.h"

namespace cu3d::data {

std::filesystem::path temporary_path(const std::filesystem::path& path) {
  return path.string() + ".tmp";
}

void commit_temporary(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::rename(temporary_path(path), path, error);
  CU3D_CHECK(!error, "{}: cannot rename the finished temporary file into place: {}", path.string(),
             error.message());
}

}  // namespace cu3d::data
