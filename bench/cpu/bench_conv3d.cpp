// CPU conv3d throughput on C3D shapes, against OpenBLAS sgemm on a GEMM of the same size.
//   ./cu3d_bench_cpu --benchmark_filter=Conv3d\|Sgemm
// The FLOP/s counter counts 2 FLOPs per multiply-accumulate (Conv3dShape::macs()); the
// fwd+bwd benchmark runs forward, bwd-data and bwd-filter (3 * 2 * macs FLOPs).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/cpu/common.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/gemm.h"

namespace cu3d::cpu {
namespace {

// Arg 0: conv2a-like (batch 2, 8x28x28x64 -> 128, 3x3x3 same): GEMM M = 12544, N = 128,
// K = 1728. Arg 1: conv1a-like (batch 2, 16x112x112x3 -> 64), the c = 3 input layer. Args 2 and
// 3: keras3d's conv1a (c = 1) and conv1b (32 -> 32, three quarters of its training FLOPs) at
// batch 32, 10x32x32 (the CPU training step's bench_train_step.cpp).
Conv3dShape shape(int64_t which) {
  if (which == 0)
    return Conv3dShape::make(2, {8, 28, 28}, 64, 128, {3, 3, 3}, {1, 1, 1}, Padding::same);
  if (which == 2)
    return Conv3dShape::make(32, {10, 32, 32}, 1, 32, {3, 3, 3}, {1, 1, 1}, Padding::same);
  if (which == 3)
    return Conv3dShape::make(32, {10, 32, 32}, 32, 32, {3, 3, 3}, {1, 1, 1}, Padding::same);
  return Conv3dShape::make(2, {16, 112, 112}, 3, 64, {3, 3, 3}, {1, 1, 1}, Padding::same);
}

struct ConvBuffers {
  Conv3dShape s;
  std::vector<float> x, w, b, y, dy, dx, dw, db;
  explicit ConvBuffers(const Conv3dShape& s_)
      : s(s_),
        x(random_floats(s.input_size(), 1)),
        w(random_floats(s.filter_size(), 2)),
        b(random_floats(s.k, 3)),
        y(s.output_size()),
        dy(random_floats(s.output_size(), 4)),
        dx(s.input_size()),
        dw(s.filter_size()),
        db(s.k) {}
  void fwd() { conv3d_fwd(s, x.data(), w.data(), b.data(), y.data()); }
  void bwd_data() { conv3d_bwd_data(s, dy.data(), w.data(), dx.data()); }
  void bwd_filter() { conv3d_bwd_filter(s, x.data(), dy.data(), dw.data(), db.data()); }
};

void BM_Conv3dFwdBwd(benchmark::State& state) {
  ConvBuffers b(shape(state.range(0)));
  for (auto _ : state) {
    b.fwd();
    b.bwd_data();
    b.bwd_filter();
    benchmark::DoNotOptimize(b.dw.data());
  }
  set_flops(state, 3 * 2.0 * b.s.macs());
}

void BM_Conv3dFwd(benchmark::State& state) {
  ConvBuffers b(shape(state.range(0)));
  for (auto _ : state) {
    b.fwd();
    benchmark::DoNotOptimize(b.y.data());
  }
  set_flops(state, 2.0 * b.s.macs());
}

void BM_Conv3dBwdData(benchmark::State& state) {
  ConvBuffers b(shape(state.range(0)));
  for (auto _ : state) {
    b.bwd_data();
    benchmark::DoNotOptimize(b.dx.data());
  }
  set_flops(state, 2.0 * b.s.macs());
}

void BM_Conv3dBwdFilter(benchmark::State& state) {
  ConvBuffers b(shape(state.range(0)));
  for (auto _ : state) {
    b.bwd_filter();
    benchmark::DoNotOptimize(b.dw.data());
  }
  set_flops(state, 2.0 * b.s.macs());
}

// The reference rate: one multi-threaded sgemm of conv2a's forward GEMM size,
// (12544 x 1728) * (128 x 1728)^T.
void BM_SgemmConv2aSize(benchmark::State& state) {
  const int64_t m = 12544, n = 128, k = 1728;
  const auto a = random_floats(m * k, 5), bt = random_floats(n * k, 6);
  std::vector<float> c(m * n);
  for (auto _ : state) {
    gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, bt.data(), k, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 2.0 * m * n * k);
}

BENCHMARK(BM_SgemmConv2aSize)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dFwdBwd)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()  // all threads: compare_pytorch_cpu.py divides by it
    ->UseRealTime();
BENCHMARK(BM_Conv3dFwd)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dBwdData)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dBwdFilter)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cu3d::cpu
