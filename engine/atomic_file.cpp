#include "engine/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kernels/error.h"

namespace cu3d {
namespace fs = std::filesystem;

namespace {

// The temporary's name carries the process id so two writers never share one.
fs::path temporary_for(const fs::path& path) {
  return path.string() + fmt::format(".tmp{}", ::getpid());
}

// strerror, and for the errors a full disk or a file-size limit gives, what to do about it.
std::string write_error(int error) {
  const bool full = error == ENOSPC || error == EFBIG || error == EDQUOT;
  return fmt::format("{}{}", std::strerror(error),
                     full ? " (the disk is full or a file-size limit was reached: free space or "
                            "write elsewhere)"
                          : "");
}

// Tests that must kill a writer mid-commit (tests/cpu/test_crash_safety.cpp) widen the window
// between the finished temporary and the rename with CU3D_TEST_SLOW_COMMIT_MS.
void test_commit_delay() {
  const char* ms = std::getenv("CU3D_TEST_SLOW_COMMIT_MS");
  if (ms != nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // some file systems do not allow it; the rename already happened
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_bytes(std::FILE* file, const void* bytes, std::size_t size, const fs::path& path) {
  if (size == 0) return;
  CU3D_CHECK(std::fwrite(bytes, 1, size, file) == size, "could not write {} bytes to {}: {}", size,
             path.string(), write_error(errno));
}

void write_atomically(const fs::path& path, const std::function<void(std::FILE*)>& write) {
  const fs::path temporary = temporary_for(path);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  CU3D_CHECK(file, "could not create {}: {}; check that the folder exists and is writable",
             temporary.string(), std::strerror(errno));
  try {
    write(file);
    CU3D_CHECK(std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0,
               "could not write {}: {}; the previous version is unchanged", path.string(),
               write_error(errno));
  } catch (...) {
    std::fclose(file);
    std::remove(temporary.c_str());
    throw;
  }
  const bool closed = std::fclose(file) == 0;
  if (closed) test_commit_delay();
  if (!closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = write_error(errno);
    std::remove(temporary.c_str());
    throw Error(fmt::format("could not write {}: {}; the previous version is unchanged",
                            path.string(), reason));
  }
  fsync_directory(path.parent_path());
}

int remove_stale_temporaries(const fs::path& folder) {
  int removed = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    const size_t mark = name.rfind(".tmp");
    if (mark == std::string::npos || mark + 4 == name.size()) continue;
    const std::string digits = name.substr(mark + 4);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    removed += fs::remove(entry.path(), error) ? 1 : 0;
  }
  return removed;
}

void write_atomically(const fs::path& path, std::string_view contents) {
  write_atomically(
      path, [&](std::FILE* file) { write_bytes(file, contents.data(), contents.size(), path); });
}

}  // namespace cu3d
