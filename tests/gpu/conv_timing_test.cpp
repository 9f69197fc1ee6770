// Timings of the conv3d passes on C3D's layers, cu3d against cuDNN, per precision: a quick
// table for docs/kernels/conv3d_cuda.md until bench/gpu exists. Runs only when
// CU3D_GPU_TIMING=1 (and a GPU is present), else skips; CU3D_GPU_TIMING_BATCH sets the batch
// (default 32). Each row: median of 10 timed runs after 2 warm-ups, CUDA events around each
// run, inputs random (never zeros).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/cases.h"
#include "gpu/parity.h"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cudnn/conv3d.h"

namespace cu3d::parity {
namespace {

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

TEST(ConvTiming, C3dLayers) {
  std::string reason;
  if (!cuda::device_available(&reason)) GTEST_SKIP() << reason;
  const char* on = std::getenv("CU3D_GPU_TIMING");
  if (!on || std::string(on) != "1") GTEST_SKIP() << "set CU3D_GPU_TIMING=1 to time";
  const char* b = std::getenv("CU3D_GPU_TIMING_BATCH");
  const int batch = b ? std::atoi(b) : 32;
  const cuda::Stream stream;
  const cudaStream_t st = stream.get();
  std::mt19937_64 rng(7);
  std::printf("[ TIMING   ] batch %d; ms (TFLOP/s); ratio = cuDNN time / cu3d time\n", batch);
  std::printf("[ TIMING   ] %-7s %-10s %-5s %18s %18s %7s\n", "layer", "pass", "prec", "cu3d",
              "cudnn", "ratio");
  for (const auto& layer : cases::c3d_conv_layers(batch)) {
    const Conv3dShape& s = layer.shape;
    const DeviceArray x(random_floats(s.input_size(), rng)), w(random_floats(s.filter_size(), rng));
    const DeviceArray dy(random_floats(s.output_size(), rng)), bias(random_floats(s.k, rng));
    DeviceArray y(s.output_size()), dx(s.input_size()), dw(s.filter_size()), db(s.k);
    const double tflop = 2.0 * double(s.macs()) * 1e-12;
    for (const char* pass : {"fwd", "bwd_data", "bwd_filter"}) {
      for (Precision p : cases::kPrecisions) {
        const std::string ps(pass);
        auto mine = [&] {
          if (ps == "fwd") cuda::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), p, st);
          if (ps == "bwd_data") cuda::conv3d_bwd_data(s, dy.get(), w.get(), dx.get(), p, st);
          if (ps == "bwd_filter")
            cuda::conv3d_bwd_filter(s, x.get(), dy.get(), dw.get(), db.get(), p, st);
        };
        auto theirs = [&] {
          if (ps == "fwd") cudnn::conv3d_fwd(s, x.get(), w.get(), bias.get(), y.get(), p, st);
          if (ps == "bwd_data") cudnn::conv3d_bwd_data(s, dy.get(), w.get(), dx.get(), p, st);
          if (ps == "bwd_filter")
            cudnn::conv3d_bwd_filter(s, x.get(), dy.get(), dw.get(), db.get(), p, st);
        };
        const double a = median_ms(st, mine), c = median_ms(st, theirs);
        std::printf("[ TIMING   ] %-7s %-10s %-5s %9.3f (%6.1f) %9.3f (%6.1f) %7.2f\n",
                    layer.name.c_str(), pass, to_string(p), a, tflop / (a * 1e-3), c,
                    tflop / (c * 1e-3), c / a);
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace
}  // namespace cu3d::parity
