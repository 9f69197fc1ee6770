// The one exception type of cu3d. Every layer (kernels, engine, layers, data, apps) throws
// cu3d::Error with a message that names the op, file or value and says what to do.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace cu3d {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws cu3d::Error with a fmt-style message when `cond` is false.
#define CU3D_CHECK(cond, ...)                                     \
  do {                                                            \
    if (!(cond)) throw ::cu3d::Error(::fmt::format(__VA_ARGS__)); \
  } while (0)

}  // namespace cu3d
