#include "bench/gpu/common.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include <cublas_v2.h>
#include <cudnn.h>

namespace cu3d::bench {

int batch() {
  static const int b = [] {
    const char* env = std::getenv("CU3D_BENCH_BATCH");
    return env ? std::max(1, std::atoi(env)) : 32;
  }();
  return b;
}

namespace {

// 4 MiB of random values in [-1, 1): fp32, or bf16 (the upper half of each fp32 value).
std::vector<uint16_t> random_block(uint64_t seed, Fill fill) {
  constexpr int64_t kBlockHalves = int64_t(1) << 21;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<uint16_t> block(kBlockHalves);
  const int per_value = fill == Fill::bf16 ? 1 : 2;
  for (int64_t i = 0; i < kBlockHalves; i += per_value) {
    const float value = dist(rng);
    uint16_t halves[2];
    std::memcpy(halves, &value, sizeof(value));
    if (fill == Fill::bf16)
      block[i] = halves[1];
    else
      std::memcpy(&block[i], halves, sizeof(halves));
  }
  return block;
}

}  // namespace

DeviceBuffer::DeviceBuffer(int64_t bytes, uint64_t seed, Fill fill) {
  const int64_t size = std::max<int64_t>(bytes, 4);
  CU3D_CUDA_CHECK(cudaMalloc(&ptr_, size));
  if (fill == Fill::zeros) {
    CU3D_CUDA_CHECK(cudaMemset(ptr_, 0, size));
    return;
  }
  const std::vector<uint16_t> block = random_block(seed, fill);
  const int64_t block_bytes = int64_t(block.size() * sizeof(uint16_t));
  char* base = static_cast<char*>(ptr_);
  CU3D_CUDA_CHECK(
      cudaMemcpy(base, block.data(), std::min(block_bytes, size), cudaMemcpyHostToDevice));
  // Doubling device-to-device copies: gigabytes in milliseconds instead of seconds over PCIe.
  for (int64_t filled = block_bytes; filled < size; filled *= 2)
    CU3D_CUDA_CHECK(
        cudaMemcpy(base + filled, base, std::min(filled, size - filled), cudaMemcpyDeviceToDevice));
}

DeviceBuffer::~DeviceBuffer() {
  cudaFree(ptr_);
}

int rotation_sets(int64_t baseper_set) {
  constexpr int64_t kL2Bytes = int64_t(50) << 20;  // H100's L2; conservative for smaller parts
  const int64_t sets = (3 * kL2Bytes + baseper_set - 1) / std::max<int64_t>(baseper_set, 1);
  return int(std::clamp<int64_t>(sets, 2, 8));
}

cudaStream_t stream() {
  static const cuda::Stream s;
  return s.get();
}

void guarded(benchmark::State& state, const std::function<void()>& body) {
  std::string reason;
  if (!cuda::device_available(&reason)) {
    state.SkipWithError(("no GPU: " + reason).c_str());
    return;
  }
  try {
    body();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

std::vector<double> back_to_back_ms(cudaStream_t stream, const std::function<void(int)>& call,
                                    int warmup, int runs) {
  for (int i = 0; i < warmup; ++i)
    call(i);
  std::vector<cuda::Event> marks(runs + 1);
  marks[0].record(stream);
  for (int i = 0; i < runs; ++i) {
    call(i);
    marks[i + 1].record(stream);
  }
  CU3D_CUDA_CHECK(cudaEventSynchronize(marks[runs].get()));
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i)
    ms.push_back(marks[i + 1].elapsed_ms_since(marks[i]));
  return ms;
}

double median_ms(cudaStream_t stream, const std::function<void(int)>& call, int warmup, int runs) {
  std::vector<double> ms = back_to_back_ms(stream, call, warmup, runs);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

namespace {

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(fmt::format("bench peaks: {} failed ({})", call, cublasGetStatusString(status)));
}

// TFLOP/s of an n^3 GEMM in `precision` through cuBLAS: the reachable matrix peak.
double gemm_tflops(cublasHandle_t handle, Precision precision) {
  constexpr int n = 8192;
  const bool bf16 = precision == Precision::bf16;
  const int64_t bytes = int64_t(n) * n * (bf16 ? 2 : 4);
  const Fill fill = bf16 ? Fill::bf16 : Fill::f32;
  const DeviceBuffer a(bytes, 1, fill), b(bytes, 2, fill), c(bytes, 3, Fill::zeros);
  const float alpha = 1, beta = 0;
  const cublasComputeType_t compute = precision == Precision::fp32   ? CUBLAS_COMPUTE_32F_PEDANTIC
                                      : precision == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                     : CUBLAS_COMPUTE_32F;
  const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const double ms = median_ms(
      stream(),
      [&](int) {
        check_cublas(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.as<void>(),
                                  type, n, b.as<void>(), type, n, &beta, c.as<void>(), type, n,
                                  compute, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx");
      },
      2, 7);
  return 2.0 * n * n * double(n) / (ms * 1e-3) * 1e-12;
}

double copy_gbps() {
  constexpr int64_t bytes = int64_t(1) << 30;
  const DeviceBuffer src(bytes, 4), dst(bytes, 5, Fill::zeros);
  const double ms = median_ms(
      stream(),
      [&](int) {
        CU3D_CUDA_CHECK(
            cudaMemcpyAsync(dst.f(), src.f(), bytes, cudaMemcpyDeviceToDevice, stream()));
      },
      2, 11);
  return 2.0 * double(bytes) / (ms * 1e-3) * 1e-9;
}

Peaks measure_peaks() {
  cublasHandle_t handle;
  check_cublas(cublasCreate(&handle), "cublasCreate");
  check_cublas(cublasSetStream(handle, stream()), "cublasSetStream");
  Peaks p{};
  for (Precision precision : {Precision::fp32, Precision::tf32, Precision::bf16})
    p.tflops[int(precision)] = gemm_tflops(handle, precision);
  cublasDestroy(handle);
  p.copy_gbps = copy_gbps();
  return p;
}

std::map<std::string, double>& baselines() {
  static std::map<std::string, double> m;
  return m;
}

// A device-to-device copy that moves `bytes` (reads half, writes half) from rotated sources, as
// the ops read theirs: the least time any op that must move that many bytes can take, launch and
// ramp-up included. At C3D's small sizes (a 13 KB softmax, pool5's 7 MB) that floor sits far
// below the copy peak, which only a transfer of hundreds of MB reaches.
double same_size_copy_ms(int64_t bytes) {
  static std::map<int64_t, double> measured;
  const auto it = measured.find(bytes);
  if (it != measured.end()) return it->second;
  const int64_t half = std::max<int64_t>(256, (bytes / 2 + 255) / 256 * 256);
  const int sets = rotation_sets(half);
  const DeviceBuffer src(half * sets, 6), dst(half, 7, Fill::zeros);
  const double ms = median_ms(
      stream(),
      [&](int i) {
        CU3D_CUDA_CHECK(cudaMemcpyAsync(dst.as<char>(), src.as<char>() + (i % sets) * half, half,
                                        cudaMemcpyDeviceToDevice, stream()));
      },
      3, 21);
  return measured[bytes] = ms;
}

}  // namespace

const Peaks& peaks() {
  static const Peaks p = measure_peaks();
  return p;
}

namespace {

// Feeds each iteration's time to the benchmark loop and sets the counters run_timed describes;
// returns the median ms.
double report(benchmark::State& state, const Work& work, std::vector<double> ms) {
  size_t i = 0;
  for (auto _ : state)
    state.SetIterationTime(ms[i++] * 1e-3);
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double seconds = median * 1e-3;
  state.counters["ms"] = median;
  if (work.flops > 0) state.counters["TFLOP/s"] = work.flops / seconds * 1e-12;
  if (work.bytes > 0) state.counters["GB/s"] = work.bytes / seconds * 1e-9;
  const Peaks& p = peaks();
  const double floor_s = std::max(work.flops / (p.tflops[int(work.precision)] * 1e12),
                                  work.bytes / (p.copy_gbps * 1e9));
  if (floor_s > 0) state.counters["roofline"] = floor_s / seconds;
  if (work.flops == 0 && work.bytes > 0) {
    const double copy_ms = same_size_copy_ms(int64_t(work.bytes));
    state.counters["same_size_copy_us"] = copy_ms * 1e3;
    state.counters["vs_same_size_copy"] = copy_ms / median;
  }
  return median;
}

// A CUDA graph captured from a stream, instantiated; destroyed with it.
class CapturedGraph {
 public:
  CapturedGraph(cudaStream_t stream, const std::function<void()>& enqueue) {
    // Relaxed: the calls may set kernel attributes and encode tensor maps while capturing.
    CU3D_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    try {
      enqueue();
    } catch (...) {
      cudaGraph_t abandoned = nullptr;
      cudaStreamEndCapture(stream, &abandoned);
      if (abandoned) cudaGraphDestroy(abandoned);
      throw;
    }
    CU3D_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    CU3D_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  ~CapturedGraph() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  void launch(cudaStream_t stream) const { CU3D_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace

double run_timed(benchmark::State& state, cudaStream_t stream, const Work& work,
                 const std::function<void(int)>& call) {
  constexpr int kWarmup = 3;
  return report(state, work, back_to_back_ms(stream, call, kWarmup, int(state.max_iterations)));
}

double run_graph_timed(benchmark::State& state, cudaStream_t stream, const Work& work, int sets,
                       const std::function<void(int)>& call) {
  constexpr int kWarmup = 3;
  for (int i = 0; i < kWarmup; ++i)
    call(i);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  const CapturedGraph graph(stream, [&] {
    for (int r = 0; r < sets; ++r)
      call(r);
  });
  std::vector<double> ms = back_to_back_ms(
      stream, [&](int) { graph.launch(stream); }, 1, int(state.max_iterations));
  for (double& t : ms)
    t /= sets;
  return report(state, work, std::move(ms));
}

void remember_baseline(const std::string& key, double ms) {
  baselines()[key] = ms;
}

void set_ratio_to_baseline(benchmark::State& state, const std::string& key, double ms) {
  const auto it = baselines().find(key);
  if (it != baselines().end()) state.counters["vs_cudnn"] = it->second / ms;
}

}  // namespace cu3d::bench

namespace cu3d::bench {
namespace {

// The versions and device that every result file records (Google Benchmark's "context").
bool add_context() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  benchmark::AddCustomContext("cuda_runtime", std::to_string(runtime));
  benchmark::AddCustomContext("cuda_driver_api", std::to_string(driver));
  benchmark::AddCustomContext("cudnn", std::to_string(cudnnGetVersion()));
  benchmark::AddCustomContext("batch", std::to_string(batch()));
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    benchmark::AddCustomContext("gpu", prop.name);
    benchmark::AddCustomContext("gpu_sms", std::to_string(prop.multiProcessorCount));
  }
  return true;
}

const bool context_added = add_context();

// The peaks as their own row, so every result file carries what its roofline fractions used.
void BM_Peaks(benchmark::State& state) {
  guarded(state, [&] {
    const Peaks& p = peaks();
    for (auto _ : state)
      state.SetIterationTime(1e-3);
    state.counters["fp32_TFLOP/s"] = p.tflops[int(Precision::fp32)];
    state.counters["tf32_TFLOP/s"] = p.tflops[int(Precision::tf32)];
    state.counters["bf16_TFLOP/s"] = p.tflops[int(Precision::bf16)];
    state.counters["copy_GB/s"] = p.copy_gbps;
  });
}
BENCHMARK(BM_Peaks)->Name("peaks/cublas_gemm_and_d2d_copy")->UseManualTime()->Iterations(1);

}  // namespace
}  // namespace cu3d::bench
