// A block of memory on one device, shared by every Tensor that views it.
#pragma once

#include <cstddef>

#include "engine/device.h"

namespace cu3d {

class Storage {
 public:
  // Host memory is 64-byte aligned (one cache line, one AVX-512 vector); `pinned` host memory is
  // page-locked through CUDA when the CUDA backend is built (plain memory otherwise). CUDA memory
  // comes from the stream-ordered pool.
  Storage(std::size_t bytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

// Copies `bytes` between any two devices (host <-> host, host <-> CUDA, CUDA <-> CUDA) and waits
// for the copy to finish.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                std::size_t bytes);

}  // namespace cu3d
