// The host side of the implicit-GEMM conv kernels (conv3d_igemm.cuh): split-K plans and the
// launch of version 2 for each precision. Apart from the kernel header so that code which only
// needs the kernels (the host emulation in tests/emulation) does not meet a <<<launch>>>.
#pragma once

#include <string>

#include "kernels/cuda/conv3d_igemm.cuh"
#include "kernels/cuda/runtime.h"

namespace cu3d::cuda::igemm {

// The split-K plan (split_k, conv3d_geometry.h) of this device for R = r values (the r-tiles
// of precision p), or one split unless `allow_split`.
SplitPlan plan_splits(int64_t r, Precision p, int64_t blocks_mn, bool allow_split);
// The same for a kernel whose r-tiles are its own (`tiles` of them).
SplitPlan split_tiles(int64_t tiles, int64_t blocks_mn);

// out[i] = sum over s < splits of partial[s * count + i]: the deterministic second pass of
// split-K and of the bias-gradient column sums.
void sum_splits(const float* partial, int splits, int64_t count, float* out, cudaStream_t stream);

template <class Problem, Precision P>
void launch_implicit_gemm(const Problem& prob, SplitPlan plan, cudaStream_t stream) {
  const dim3 grid((prob.M + kBM - 1) / kBM, (prob.N + kBN - 1) / kBN, plan.splits);
  conv3d_implicit_gemm<Problem, P><<<grid, kThreads, 0, stream>>>(prob, plan.tiles_per_split);
}

// Runs the GEMM of `prob` in precision `p`; `what` names the pass and shape for errors.
template <class Problem>
void run_implicit_gemm(const Problem& prob, Precision p, SplitPlan plan, cudaStream_t stream,
                       const std::string& what) {
  switch (p) {
    case Precision::fp32:
      launch_implicit_gemm<Problem, Precision::fp32>(prob, plan, stream);
      break;
    case Precision::tf32:
      launch_implicit_gemm<Problem, Precision::tf32>(prob, plan, stream);
      break;
    case Precision::bf16:
      launch_implicit_gemm<Problem, Precision::bf16>(prob, plan, stream);
      break;
  }
  check_launch(what);
}

}  // namespace cu3d::cuda::igemm
