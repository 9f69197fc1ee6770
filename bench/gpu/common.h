// What every GPU benchmark shares: the batch, CUDA-event timing with a median, input sets
// rotated so that L2 does not flatter, the device peaks measured in the same run, and the
// counters (time, TFLOP/s, GB/s, fraction of the roofline floor, ratio to cuDNN).
//
// Timing: each benchmark iteration is one call bracketed by CUDA events after warm-up calls;
// Google Benchmark gets it through SetIterationTime (so its real_time is the mean), and the
// counter `ms` is the median, which the tables use (robust to a stray slow run).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"
#include "kernels/precision.h"

namespace cu3d::bench {

// CU3D_BENCH_BATCH (default 32): the batch of every C3D-shaped benchmark.
int batch();

// What a DeviceBuffer holds: zeros (outputs), or uniform random values in [-1, 1) (never
// zeros) as fp32 or as bf16.
enum class Fill { zeros, f32, bf16 };

// `bytes` of device memory filled as `fill` says; a 4 MiB random block is tiled over it
// (plenty for timing, and fast to fill).
class DeviceBuffer {
 public:
  DeviceBuffer(int64_t bytes, uint64_t seed, Fill fill = Fill::f32);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr_); }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// Enough copies of a benchmark's inputs that one iteration's inputs have left the 50 MB L2
// before they are read again: copies of `bytes_per_set` bytes totalling at least 3 x L2, at
// least 2 and at most 8.
int rotation_sets(int64_t bytes_per_set);

// Measured in the same process, once, before the first benchmark that asks: the matrix peak of
// each precision (TFLOP/s of a cuBLAS 8192^3 GEMM: FFMA sgemm, TF32 and BF16 tensor-core
// GemmEx) and the copy bandwidth (GB/s of a 1 GiB device-to-device cudaMemcpy, counting the
// read and the write).
struct Peaks {
  double tflops[3];  // by Precision
  double copy_gbps;
};
const Peaks& peaks();

// The milliseconds of each of `runs` calls of `call(i)` (i = run index, for rotation) after
// `warmup` calls, all enqueued back to back with a CUDA event on `stream` between each two and
// one wait at the end: the host runs ahead of the GPU, so a call's host-side work (cuDNN's
// per-call set-up, cu3d's tensor maps, launches) overlaps the kernels of the calls before it, as
// in a training step, and each interval is the GPU's time for one call. (Until session 14 each
// call had its own events and a wait: the GPU idled through the next call's host work, which
// counted against it; that cost cuDNN's forward up to ~0.25 ms a call on an H100.)
std::vector<double> back_to_back_ms(cudaStream_t stream, const std::function<void(int)>& call,
                                    int warmup, int runs);

// The median of back_to_back_ms.
double median_ms(cudaStream_t stream, const std::function<void(int)>& call, int warmup, int runs);

// Runs the benchmark loop: every iteration one call, timed by back_to_back_ms. Sets the
// counters ms (median),
// and, when nonzero, TFLOP/s, GB/s and roofline (floor time / measured time, where the floor
// is max(flops / peak of `precision`, bytes / copy bandwidth)). A memory-bound op (bytes but no
// flops) also gets same_size_copy_us, a device-to-device copy moving the same bytes, and
// vs_same_size_copy, that copy's time over the op's: the floor at sizes too small to reach the
// copy peak. Returns the median ms.
struct Work {
  double flops = 0;
  double bytes = 0;  // what the op must move at least
  Precision precision = Precision::fp32;
};
double run_timed(benchmark::State& state, cudaStream_t stream, const Work& work,
                 const std::function<void(int)>& call);

// As run_timed, but each iteration replays a CUDA graph captured once from `sets` calls (call(r)
// for r < sets, one per rotated input set; after 3 warm-up calls, which hold cudnnFind*), and
// counts a replay's time over `sets`: no host-side work per call is left in the time, only the
// kernels and the gaps between them. What "kernel against kernel" means where a call's host work
// outlasts its kernels (cuDNN's per-call set-up against a 0.1 ms conv).
double run_graph_timed(benchmark::State& state, cudaStream_t stream, const Work& work, int sets,
                       const std::function<void(int)>& call);

// The cuDNN baseline of a case, remembered so the cu3d run of the same case (registered after
// it) gets a vs_cudnn counter (cuDNN time / cu3d time: above 1 means cu3d is faster).
void remember_baseline(const std::string& key, double ms);
void set_ratio_to_baseline(benchmark::State& state, const std::string& key, double ms);

// The one stream every benchmark runs on.
cudaStream_t stream();

// Runs a benchmark's body, or skips it with the reason when no GPU can be used; an exception
// (an op refusing a shape, out of memory) skips that benchmark with its message, so one failure
// does not end the whole run.
void guarded(benchmark::State& state, const std::function<void()>& body);

}  // namespace cu3d::bench
