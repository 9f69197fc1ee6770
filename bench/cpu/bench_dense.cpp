// CPU dense throughput on C3D's fc6 at batch 32 (8192 -> 4096): 2.1 GFLOP per pass.
//   ./cu3d_bench_cpu --benchmark_filter=Dense
// The backward computes both dx and dw (two GEMMs) plus db.
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/cpu/common.h"
#include "kernels/cpu/dense.h"

namespace cu3d::cpu {
namespace {

constexpr int64_t kBatch = 32, kIn = 8192, kOut = 4096;

void BM_DenseFwd(benchmark::State& state) {
  const auto x = random_floats(kBatch * kIn, 1), w = random_floats(kOut * kIn, 2),
             b = random_floats(kOut, 3);
  std::vector<float> y(kBatch * kOut);
  for (auto _ : state) {
    dense_fwd(kBatch, kIn, kOut, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(state, 2.0 * kBatch * kIn * kOut);
}

void BM_DenseBwd(benchmark::State& state) {
  const auto x = random_floats(kBatch * kIn, 1), w = random_floats(kOut * kIn, 2),
             dy = random_floats(kBatch * kOut, 3);
  std::vector<float> dx(kBatch * kIn), dw(kOut * kIn), db(kOut);
  for (auto _ : state) {
    dense_bwd(kBatch, kIn, kOut, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    benchmark::DoNotOptimize(dw.data());
  }
  set_flops(state, 2 * 2.0 * kBatch * kIn * kOut);
}

BENCHMARK(BM_DenseFwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DenseBwd)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cu3d::cpu
