// NVTX ranges for Nsight Systems: a scope opens a named range on construction and closes it on
// destruction, so a timeline reads like the model (`conv3a/fwd`, `step/backward`, DESIGN.md).
// NVTX3 is header-only; with no profiler attached each push/pop is a test of a null function
// pointer (a few nanoseconds), so ranges stay on in release builds.
//
//   { NvtxRange range("conv3a/fwd"); ...launch the layer's kernels... }
//   NvtxRange range(fmt::format("{}/bwd", layer_name));
#pragma once

#include <string>

#include <nvtx3/nvToolsExt.h>

namespace cu3d::cuda {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  explicit NvtxRange(const std::string& name) : NvtxRange(name.c_str()) {}
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace cu3d::cuda
