// The flags of the commands that run a model (train, eval, predict): where it runs (--device)
// and, on CUDA, in which precision (--precision), and the log line that says so.
#pragma once

#include <string>
#include <string_view>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "engine/device.h"
#include "kernels/error.h"
#include "kernels/precision.h"

namespace cu3d::apps {

// parse(value), its error prefixed with the flag that gave the value: "--backend: ...".
template <class Parse>
auto parse_flag(const char* flag, const std::string& value, Parse parse) {
  try {
    return parse(value);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", flag, e.what()));
  }
}

// Registers --device on `cmd`, read into `value` (its default shown in --help).
void add_device_flag(CLI::App& cmd, std::string& value);

// `value` ("cpu", "cuda" or "cuda:N") as a Device. A CUDA device on a build or machine without
// CUDA is an error naming the flag and the reason, and saying to `verb` on the CPU instead.
Device parse_device_flag(const std::string& value, std::string_view verb);

// Registers --precision on `cmd`, read into `value` ("fp32", "tf32" or "bf16": parse_precision).
void add_precision_flag(CLI::App& cmd, std::string& value);

// The log's compute line: the CUDA options on `device`, or the CPU's threads and BLAS, with a
// note (from `command`) when `precision` asks the CPU for more than it does (it computes in fp32).
void print_compute(const Device& device, Precision precision, std::string_view command);

}  // namespace cu3d::apps
