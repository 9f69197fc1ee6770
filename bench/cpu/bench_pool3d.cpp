// CPU max-pool throughput on C3D's pool2 (batch 2, 16x56x56x128 -> 8x28x28x128, 2x2x2 stride 2).
//   ./cu3d_bench_cpu --benchmark_filter=MaxPool3d
// Pooling is memory-bound, so the counter is bytes moved: forward reads x and writes y;
// backward reads x, y, dy and writes dx (4 bytes each for float).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/cpu/common.h"
#include "kernels/cpu/pool3d.h"

namespace cu3d::cpu {
namespace {

const Pool3dShape kPool2 =
    Pool3dShape::make(2, {16, 56, 56}, 128, {2, 2, 2}, {2, 2, 2}, Padding::valid);

void BM_MaxPool3dFwd(benchmark::State& state) {
  const Pool3dShape& s = kPool2;
  const auto x = random_floats(s.input_size(), 1);
  std::vector<float> y(s.output_size());
  for (auto _ : state) {
    maxpool3d_fwd(s, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 4.0 * (s.input_size() + s.output_size()));
}

void BM_MaxPool3dBwd(benchmark::State& state) {
  const Pool3dShape& s = kPool2;
  const auto x = random_floats(s.input_size(), 1), dy = random_floats(s.output_size(), 2);
  std::vector<float> y(s.output_size()), dx(s.input_size());
  maxpool3d_fwd(s, x.data(), y.data());
  for (auto _ : state) {
    maxpool3d_bwd(s, x.data(), y.data(), dy.data(), dx.data());
    benchmark::DoNotOptimize(dx.data());
  }
  set_bytes(state, 4.0 * (2 * s.input_size() + 2 * s.output_size()));
}

BENCHMARK(BM_MaxPool3dFwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MaxPool3dBwd)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cu3d::cpu
