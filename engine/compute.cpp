#include "engine/compute.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>

#include <omp.h>

#include "kernels/cpu/blas_core.h"

#ifdef CU3D_CUDA
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cudnn/conv3d.h"
#endif

namespace cu3d {

ConvBackend parse_conv_backend(std::string_view name) {
  if (name == "cu3d") return ConvBackend::cu3d;
  if (name == "cudnn") return ConvBackend::cudnn;
  if (name == "auto") return ConvBackend::auto_select;
  throw Error(fmt::format("unknown backend '{}': use cu3d, cudnn or auto", name));
}

const char* to_string(ConvBackend backend) {
  switch (backend) {
    case ConvBackend::cu3d:
      return "cu3d";
    case ConvBackend::cudnn:
      return "cudnn";
    case ConvBackend::auto_select:
      return "auto";
  }
  return "?";
}

ComputeOptions& compute_options() {
  static ComputeOptions options;
  return options;
}

std::string describe_compute_options() {
  const ComputeOptions& o = compute_options();
  std::string kernels;
  if (o.pipelined_conv) {
    kernels = " (pipelined conv";
    if (o.cluster_conv) kernels += ", clustered TMA-fed wgmma conv";
    if (o.tma_conv && !o.cluster_conv) kernels += ", TMA-fed wgmma conv";
    if (o.wgmma_ws_conv && !o.tma_conv) kernels += ", warp-specialized wgmma conv";
    if (o.wgmma_conv && !o.wgmma_ws_conv && !o.tma_conv) kernels += ", wgmma conv";
    if (o.wide_conv && !o.wgmma_conv && !o.wgmma_ws_conv && !o.tma_conv) kernels += ", wide conv";
    if (o.fp32_tensor_cores && (o.cluster_conv || o.tma_conv || o.wgmma_ws_conv || o.wgmma_conv))
      kernels += ", fp32 as 3xTF32";
    if (o.pipelined_bwd_filter) kernels += ", pipelined bwd-filter";
    if (o.resident_layer_norm) kernels += ", resident layer norm";
    kernels += ")";
  }
  return fmt::format("precision {}, conv backend {}{}, fusion {}", to_string(o.precision),
                     to_string(o.conv_backend), kernels, o.fuse ? "on" : "off");
}

std::string describe_cpu_compute() {
  const int threads = omp_get_max_threads();
  return fmt::format("{} OpenMP thread{}, OpenBLAS {} kernels{}", threads, threads == 1 ? "" : "s",
                     cpu::blas_core(),
                     std::getenv("OPENBLAS_CORETYPE") ? " (OPENBLAS_CORETYPE)" : "");
}

std::string describe_cuda_compute() {
#ifdef CU3D_CUDA
  return cuda::describe_cuda();
#else
  return "not built (configure where the CUDA toolkit is installed to build the GPU backend)";
#endif
}

#ifdef CU3D_CUDA
namespace {

cudaStream_t& stream_slot() {
  static cudaStream_t stream = nullptr;
  return stream;
}

// The auto-selection cache key: everything that changes which backend is faster, cu3d's kernel
// versions included.
std::string tune_key(const char* pass, const Conv3dShape& s, const ComputeOptions& o) {
  return fmt::format(
      "{} n{} c{} k{} in{}x{}x{} ker{}x{}x{} str{}x{}x{} pad{}x{}x{}/{}x{}x{} {} v3 {}{} v4 {} v5 "
      "{} v6 {} v7 {} v8 {} 3xtf32 {}",
      pass, s.n, s.c, s.k, s.in.d, s.in.h, s.in.w, s.kernel.d, s.kernel.h, s.kernel.w, s.stride.d,
      s.stride.h, s.stride.w, s.pad_before.d, s.pad_before.h, s.pad_before.w, s.pad_after.d,
      s.pad_after.h, s.pad_after.w, to_string(o.precision), int(o.pipelined_conv),
      int(o.pipelined_bwd_filter), int(o.wide_conv), int(o.wgmma_conv), int(o.wgmma_ws_conv),
      int(o.tma_conv), int(o.cluster_conv), int(o.fp32_tensor_cores));
}

// Median of three timed runs after one warm-up, in milliseconds.
float time_ms(const std::function<void()>& run) {
  cudaStream_t stream = compute_stream();
  run();
  float times[3];
  for (float& t : times) {
    cuda::Event start, stop;
    start.record(stream);
    run();
    stop.record(stream);
    CU3D_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    t = stop.elapsed_ms_since(start);
  }
  std::sort(times, times + 3);
  return times[1];
}

// The backend that runs `pass` for `s`: the configured one; with auto_select, the faster of
// the two, timed the first time a (pass, shape, precision, cu3d kernel versions) is seen. Timing
// overwrites the outputs, which the final run rewrites.
ConvBackend choose_backend(const char* pass, const Conv3dShape& s,
                           const std::function<void()>& with_cu3d,
                           const std::function<void()>& with_cudnn) {
  const ComputeOptions& o = compute_options();
  if (o.conv_backend != ConvBackend::auto_select) return o.conv_backend;
  // cuDNN pads symmetrically only (Keras "same" with an even kernel or stride 2 pads more
  // after): such shapes have one candidate.
  if (!(s.pad_before == s.pad_after)) return ConvBackend::cu3d;
  static std::mutex mutex;
  static std::map<std::string, ConvBackend> chosen;
  const std::string key = tune_key(pass, s, o);
  std::lock_guard lock(mutex);
  if (auto it = chosen.find(key); it != chosen.end()) return it->second;
  const float cu3d_ms = time_ms(with_cu3d), cudnn_ms = time_ms(with_cudnn);
  const ConvBackend backend = cu3d_ms <= cudnn_ms ? ConvBackend::cu3d : ConvBackend::cudnn;
  chosen.emplace(key, backend);
  if (o.verbose)
    std::printf("auto: conv3d %s n=%d %dx%dx%dx%d->%d %s: cu3d %.3f ms, cudnn %.3f ms -> %s\n",
                pass, s.n, s.in.d, s.in.h, s.in.w, s.c, s.k, to_string(o.precision), cu3d_ms,
                cudnn_ms, to_string(backend));
  return backend;
}

// Runs `pass` with the backend choose_backend picks.
void run_conv(const char* pass, const Conv3dShape& s, const std::function<void()>& with_cu3d,
              const std::function<void()>& with_cudnn) {
  choose_backend(pass, s, with_cu3d, with_cudnn) == ConvBackend::cu3d ? with_cu3d() : with_cudnn();
}

}  // namespace

cudaStream_t compute_stream() {
  return stream_slot();
}

cuda::ConvKernel cu3d_conv_kernel() {
  const ComputeOptions& o = compute_options();
  if (!o.pipelined_conv || (o.precision == Precision::fp32 && !o.fp32_tensor_cores))
    return cuda::ConvKernel::implicit_gemm;
  return o.cluster_conv    ? cuda::ConvKernel::wgmma_cluster
         : o.tma_conv      ? cuda::ConvKernel::wgmma_tma
         : o.wgmma_ws_conv ? cuda::ConvKernel::wgmma_ws
         : o.wgmma_conv    ? cuda::ConvKernel::wgmma
         : o.wide_conv     ? cuda::ConvKernel::wide
                           : cuda::ConvKernel::pipelined;
}
cuda::ConvKernel cu3d_bwd_filter_kernel() {
  const ComputeOptions& o = compute_options();
  return o.pipelined_conv && o.pipelined_bwd_filter ? cuda::ConvKernel::pipelined
                                                    : cuda::ConvKernel::implicit_gemm;
}

void set_compute_stream(cudaStream_t stream) {
  stream_slot() = stream;
}

void conv3d_fwd_device(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                       float* y) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "fwd", s, [&] { cuda::conv3d_fwd(s, x, w, bias, y, p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_fwd(s, x, w, bias, y, p, stream); });
}

ConvBackend conv3d_fwd_backend(const Conv3dShape& s, const float* x, const float* w,
                               const float* bias, const std::function<float*()>& scratch_y) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  float* y = nullptr;
  auto output = [&] { return y ? y : (y = scratch_y()); };
  return choose_backend(
      "fwd", s, [&] { cuda::conv3d_fwd(s, x, w, bias, output(), p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_fwd(s, x, w, bias, output(), p, stream); });
}

void conv3d_bwd_data_device(const Conv3dShape& s, const float* dy, const float* w, float* dx) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "bwd-data", s, [&] { cuda::conv3d_bwd_data(s, dy, w, dx, p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_bwd_data(s, dy, w, dx, p, stream); });
}

void conv3d_bwd_filter_device(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                              float* dbias) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "bwd-filter", s,
      [&] { cuda::conv3d_bwd_filter(s, x, dy, dw, dbias, p, stream, cu3d_bwd_filter_kernel()); },
      [&] { cudnn::conv3d_bwd_filter(s, x, dy, dw, dbias, p, stream); });
}
#endif

}  // namespace cu3d
