// The NVTX range helper, a smoke test: ranges from literals and built names open and close in
// scope order without a profiler attached (NVTX3's calls are then no-ops, and need no GPU).
// That they appear on an Nsight Systems timeline is seen under `nsys profile`, not here.
#include <string>

#include <gtest/gtest.h>

#include "kernels/cuda/nvtx.h"

namespace cu3d::cuda {
namespace {

TEST(Nvtx, RangesNestFromLiteralsAndBuiltNames) {
  const std::string layer = "conv3a";
  {
    const NvtxRange step("step/forward");
    {
      const NvtxRange op(layer + "/fwd");
      SUCCEED();
    }
    const NvtxRange next("conv3b/fwd");
  }
  const NvtxRange after(std::string("step/backward"));
}

}  // namespace
}  // namespace cu3d::cuda
