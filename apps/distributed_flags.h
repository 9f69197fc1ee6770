// The data-parallel flags of `cu3d train` and the GPU a rank trains on (docs/SCALING.md).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "apps/distributed.h"
#include "engine/device.h"

namespace cu3d::apps {

void add_data_parallel_flags(CLI::App& cmd, DistSettings& settings);

// One process per GPU: a rank given plain "cuda" trains on the GPU of its local rank; an
// explicit "cuda:N" is kept (the user pinned it, e.g. with CUDA_VISIBLE_DEVICES per rank).
Device data_parallel_device(const dist::Communicator& comm, Device device, const std::string& flag);

}  // namespace cu3d::apps
