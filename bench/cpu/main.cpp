// cu3d_bench_cpu's main: Google Benchmark's, after the OpenBLAS kernel choice
// (kernels/cpu/blas_core.h), which every result file records.
#include <benchmark/benchmark.h>

#include "kernels/cpu/blas_core.h"

int main(int argc, char** argv) {
  cu3d::cpu::restart_with_better_blas_core(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("blas_core", cu3d::cpu::blas_core());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
