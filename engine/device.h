// Where a tensor's storage lives.
#pragma once

#include <string>

namespace cu3d {

struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {Kind::cpu, 0}; }
  static Device cuda(int index = 0) { return {Kind::cuda, index}; }
  // Parses "cpu", "cuda" or "cuda:N".
  static Device parse(const std::string& text);

  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"
};

// True when this build has the CUDA backend and a device is usable; `reason` says why not.
bool cuda_available(std::string* reason = nullptr);

}  // namespace cu3d
