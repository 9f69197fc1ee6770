// Each `cu3d` subcommand lives in its own file and registers itself on the CLI11 app here.
#pragma once

#include <CLI/CLI.hpp>

namespace cu3d::apps {

// Adds `cu3d toy`: trains a small 3D CNN on generated motion tensors (the engine's smoke run).
void add_toy_command(CLI::App& app);

}  // namespace cu3d::apps
