#include "apps/device_flag.h"

#include <fmt/core.h>

#include "kernels/error.h"

namespace cu3d::apps {

void add_device_flag(CLI::App& cmd, std::string& value) {
  cmd.add_option("--device", value, "cpu or cuda[:N]")->capture_default_str();
}

Device parse_device_flag(const std::string& value, std::string_view verb) {
  Device device = Device::cpu();
  try {
    device = Device::parse(value);
  } catch (const Error& e) {
    throw Error(fmt::format("--device: {}", e.what()));
  }
  std::string reason;
  CU3D_CHECK(!device.is_cuda() || cuda_available(&reason),
             "--device {}: {}; {} on the CPU with --device cpu", value, reason, verb);
  return device;
}

}  // namespace cu3d::apps
