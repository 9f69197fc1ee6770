// The --device flag of the commands that run a model: train, eval and predict.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "engine/device.h"

namespace cu3d::apps {

// Registers --device on `cmd`, read into `value` (its default shown in --help).
void add_device_flag(CLI::App& cmd, std::string& value);

// `value` ("cpu", "cuda" or "cuda:N") as a Device. A CUDA device on a build or machine without
// CUDA is an error naming the flag and the reason, and saying to `verb` on the CPU instead.
Device parse_device_flag(const std::string& value, std::string_view verb);

}  // namespace cu3d::apps
