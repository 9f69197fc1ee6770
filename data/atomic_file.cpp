#include "data/atomic_file.h"

#include <fstream>

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

void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  {
    std::ofstream out(temporary_path(path), std::ios::binary | std::ios::trunc);
    out.write(contents.data(), std::streamsize(contents.size()));
    out.flush();
    CU3D_CHECK(out.good(), "{}: cannot write {} bytes (disk full or no permission?)",
               temporary_path(path).string(), contents.size());
  }
  commit_temporary(path);
}

}  // namespace cu3d::data
