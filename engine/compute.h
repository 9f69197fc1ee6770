// Run-time compute choices, set once from the command line and printed in the run's log:
//   precision     of the matrix ops on CUDA (fp32 FFMA, tf32 or bf16 tensor cores; fp32 storage)
//   conv backend  cu3d (hand-written kernels), cudnn, or auto: time both once per shape and
//                 pass, keep the faster (like cudnn.benchmark), and say which won
//   fuse          whether Sequential runs conv -> [layer norm ->] ReLU [-> max-pool] as one
//                 fused op (on by default; `--no-fuse` keeps the separate ops;
//                 engine/ops/conv_block.h)
//   pipelined conv  whether cu3d's conv runs its version 3 kernels (forward and stride-1
//                 bwd-data, tf32/bf16; docs/kernels/conv3d_cuda.md) where they apply. On by
//                 default since they passed the GPU suite; `--no-pipelined-conv` runs version 2.
//   pipelined bwd-filter  whether bwd-filter runs version 3 as well (bf16). On by default since
//                 it passed the GPU suite (H200, session 7): 2.3-2.7x version 2 on conv2a-conv5b.
//   wide conv     whether the forward and bwd-data run version 4 (the 256 x 128 tile) where it
//                 applies. Off: it passed the GPU suite, but version 5 is faster on every layer.
//   wgmma conv    whether they run version 5 (version 4's tile on Hopper's wgmma) where it
//                 applies (sm_90a builds on compute capability 9.0; version 3 elsewhere); before
//                 wide conv. On by default since it passed the GPU suite (H200, session 7):
//                 1.35-1.8x version 3's forward in bf16, 1.7-2.1x in tf32 (conv2a-conv5b).
// and the CUDA stream that ops run on. The CPU backend always computes in the tensor's dtype.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "kernels/precision.h"
#include "kernels/shapes.h"
#ifdef CU3D_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/conv3d.cuh"
#endif

namespace cu3d {

enum class ConvBackend { cu3d, cudnn, auto_select };

ConvBackend parse_conv_backend(std::string_view name);  // "cu3d", "cudnn", "auto"
const char* to_string(ConvBackend backend);

struct ComputeOptions {
  Precision precision = Precision::fp32;
  ConvBackend conv_backend = ConvBackend::auto_select;
  bool verbose = true;         // print each auto-selection
  bool fuse = true;            // layers run conv + ReLU (+ max-pool) as one op
  bool pipelined_conv = true;  // cu3d's conv kernels: version 3 where it applies, else version 2
  bool pipelined_bwd_filter = true;  // and bwd-filter's version 3 (with pipelined_conv)
  bool wide_conv = false;            // and version 4 for the forward and bwd-data (likewise)
  bool wgmma_conv = true;            // or version 5 for them (likewise; before wide_conv)
  bool wgmma_ws_conv = false;        // or version 6, version 5 warp-specialized (before both)
  bool tma_conv = true;  // or version 7, version 6 fed by the TMA (before all three; stride 1)
  // or version 8, version 7 in clusters of two blocks sharing an operand tile (before all four;
  // where version 7 applies); off until it has run on a GPU.
  bool cluster_conv = false;
  // fp32 convs on versions 5-8 as three tf32 products (3xTF32, kernels/cuda/conv3d.cuh) rather
  // than on version 2's FFMA; off until it has run on a GPU.
  bool fp32_tensor_cores = false;
  // The per-sample layer norm held in the shared memory of a team of co-resident blocks, each
  // sample read from DRAM once (kernels/cuda/layer_norm.cuh, SampleNormPath::automatic), rather
  // than the pipelined kernels; off until it has run on a GPU.
  bool resident_layer_norm = false;
};

ComputeOptions& compute_options();  // process-wide
std::string describe_compute_options();
// The CPU backend's threads and BLAS kernels: "2 OpenMP threads, OpenBLAS SkylakeX kernels".
std::string describe_cpu_compute();
// The CUDA backend: versions, the architectures built, device 0 or why there is none; or that
// the build has no CUDA backend.
std::string describe_cuda_compute();

#ifdef CU3D_CUDA
// The stream every engine op enqueues on (the legacy default stream unless set).
cudaStream_t compute_stream();
void set_compute_stream(cudaStream_t stream);

// The cu3d conv kernel that compute_options() asks for (pipelined_conv, cluster_conv, tma_conv,
// wgmma_ws_conv, wgmma_conv, wide_conv; in fp32 version 2 unless fp32_tensor_cores).
cuda::ConvKernel cu3d_conv_kernel();
// And for bwd-filter (pipelined_conv and pipelined_bwd_filter).
cuda::ConvKernel cu3d_bwd_filter_kernel();

// The three conv passes on device pointers, through the backend chosen by compute_options().
// With auto_select, the first call for a (pass, shape, precision, cu3d kernel versions) times
// both backends and remembers the faster.
void conv3d_fwd_device(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                       float* y);
void conv3d_bwd_data_device(const Conv3dShape& s, const float* dy, const float* w, float* dx);
void conv3d_bwd_filter_device(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                              float* dbias);

// The backend conv3d_fwd_device runs for `s`: the configured one, or with auto_select the one
// timed faster. A shape that auto_select has not timed yet is timed now on (x, w, bias), into
// the buffer of s.output_size() floats that `scratch_y()` returns (called only then).
ConvBackend conv3d_fwd_backend(const Conv3dShape& s, const float* x, const float* w,
                               const float* bias, const std::function<float*()>& scratch_y);
#endif

}  // namespace cu3d
