#include "apps/compute_flags.h"

#include "engine/compute.h"

namespace cu3d::apps {

void add_device_flag(CLI::App& cmd, std::string& value) {
  cmd.add_option("--device", value, "cpu or cuda[:N]")->capture_default_str();
}

Device parse_device_flag(const std::string& value, std::string_view verb) {
  const Device device = parse_flag("--device", value, Device::parse);
  std::string reason;
  CU3D_CHECK(!device.is_cuda() || cuda_available(&reason),
             "--device {}: {}; {} on the CPU with --device cpu", value, reason, verb);
  return device;
}

void add_precision_flag(CLI::App& cmd, std::string& value) {
  cmd.add_option("--precision", value, "fp32, tf32 or bf16 (CUDA only; the CPU is fp32)")
      ->capture_default_str();
}

void print_compute(const Device& device, Precision precision, std::string_view command) {
  if (device.is_cuda()) {
    fmt::print("compute: {} on {}\n", describe_compute_options(), device.str());
    return;
  }
  if (precision != Precision::fp32)
    fmt::print("{}: --precision {} applies to CUDA ops; the CPU computes in fp32\n", command,
               to_string(precision));
  fmt::print("compute: fp32 on cpu, {}\n", describe_cpu_compute());
}

}  // namespace cu3d::apps
