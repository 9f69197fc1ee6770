// What the GPU timing tests share (conv_timing_test.cpp, bandwidth_timing_test.cpp): they run
// only with CU3D_GPU_TIMING=1 on a machine with a GPU (scripts/gpu-check.sh's timing stage),
// and a case's time is the median of 10 runs after 2 warm-ups, CUDA events around each run.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::parity {

template <class F>
double median_ms(cudaStream_t stream, F f) {
  for (int i = 0; i < 2; ++i)
    f();
  std::vector<double> ms;
  for (int i = 0; i < 10; ++i) {
    cuda::Event start, stop;
    start.record(stream);
    f();
    stop.record(stream);
    CU3D_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    ms.push_back(stop.elapsed_ms_since(start));
  }
  std::nth_element(ms.begin(), ms.begin() + 5, ms.end());
  return ms[5];
}

// Empty when timing is on and a GPU is present, else the reason to skip.
inline std::string timing_skip_reason() {
  std::string reason;
  if (!cuda::device_available(&reason)) return reason;
  const char* on = std::getenv("CU3D_GPU_TIMING");
  if (!on || std::string(on) != "1") return "set CU3D_GPU_TIMING=1 to time";
  return "";
}

}  // namespace cu3d::parity
