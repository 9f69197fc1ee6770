#include "data/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/error.h"

namespace cu3d::data {

MappedFile::MappedFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CU3D_CHECK(fd >= 0, "{}: cannot open: {}", path.string(), std::strerror(errno));
  struct stat status {};
  const bool stated = ::fstat(fd, &status) == 0;
  const int stat_errno = errno;
  if (stated && status.st_size > 0) {
    void* mapping = ::mmap(nullptr, size_t(status.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);
    CU3D_CHECK(mapping != MAP_FAILED, "{}: cannot memory-map {} bytes: {}", path.string(),
               status.st_size, std::strerror(map_errno));
    data_ = static_cast<const uint8_t*>(mapping);
    size_ = size_t(status.st_size);
    return;
  }
  ::close(fd);
  CU3D_CHECK(stated, "{}: cannot stat: {}", path.string(), std::strerror(stat_errno));
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

}  // namespace cu3d::data
