// 3D convolution on the GPU: the CUDA twins of kernels/cpu/conv3d.h (same shapes, same
// semantics: cross-correlation, zero padding, NDHWC activations, (k, kd, kh, kw, c) filters,
// outputs overwritten), with the compute precision and a stream as trailing arguments. All
// tensors are fp32 in device memory (kernels/precision.h says why); calls are asynchronous on
// `stream`. Host-callable from plain C++.
//
// The versions of each pass, the study area of docs/kernels/conv3d_cuda.md:
//   version 1, `_naive`: one thread per output element, a direct loop; the simplest correct
//              kernel, for reading and for checking version 2 on odd shapes.
//   version 2 (no suffix): implicit GEMM, 128 x 64 tiles in shared memory, FFMA for fp32,
//              mma.sync tensor cores for tf32 and bf16; any kernel size, stride and padding,
//              any channel count (16-byte loads where the channels allow, scalar gathers
//              otherwise, e.g. conv1a's c = 3), so no shape needs another path.
//   version 3 (`ConvKernel::pipelined`, tf32 and bf16): version 2's tile and epilogues fed by
//              a 4-stage cp.async pipeline and ldmatrix, for channel counts that are a multiple
//              of 64 (bf16) or 32 (tf32). The forward, and backward-data at stride 1 as the
//              forward conv it is (transposed, flipped filters); backward-filter in bf16
//              (ldmatrix.trans), the engine's default since it passed on an H200
//              (docs/kernels/conv3d_cuda.md).
//   version 4 (`ConvKernel::wide`, tf32 and bf16; passed on an H200): version 3's forward
//              on a 256 x 128 block tile with 64 x 64 per warp, for the epilogues that store each
//              output (the plain forward, bias + ReLU) and bwd-data;
//              version 3 elsewhere. Only the tests and the benchmark ask for it: version 5 is
//              faster on every C3D layer.
//   version 5 (`ConvKernel::wgmma`, tf32 and bf16; passed on an H200): version 4's block with
//              the math on Hopper's warpgroup MMA (wgmma, sm_90a) reading the stages straight
//              from shared memory, for version 3's shapes and every epilogue (both pools and the
//              layer-norm statistics too) and bwd-data; on a device of compute capability 9.0 in
//              a build for sm_90a (90a in CMAKE_CUDA_ARCHITECTURES, as by default), version 3
//              elsewhere. The engine's default from session 7 to 13, and where 7 does not apply.
//   version 6 (`ConvKernel::wgmma_ws`, tf32 and bf16; passed on an H100 and an H200):
//              version 5 with its warps specialized, a third warpgroup gathering the stages
//              while the two of math only wait on mbarriers and issue wgmma
//              (conv3d_wgmma_ws.cuh); where version 5 applies. Only the tests and the
//              benchmark ask for it: one warpgroup of gathers is slower than version 5's two
//              (0.6x, docs/kernels/conv3d_cuda.md).
//   version 7 (`ConvKernel::wgmma_tma`, tf32 and bf16; written in session 13, passed on an H200
//              and an H100 in session 14): version 6 with its gathers done by the tensor memory
//              accelerator, one thread issuing each stage as two bulk tensor copies (the
//              activations in im2col mode, the filters as a tile) that complete on the slot's
//              mbarrier (conv3d_wgmma_tma.cuh), persistent; for the forward at stride 1 (the
//              stores, bias + ReLU, the layer-norm statistics, and both pool blocks as a stored z
//              and the pool kernel: it cannot order rows window by window) and bwd-data (the
//              mirrored forward), version 5 elsewhere. The engine's default since session 14
//              (1.4-1.8x version 5 on C3D's layers).
//   version 8 (`ConvKernel::wgmma_cluster`, tf32 and bf16; written in session 15, run only in
//              the host emulation): version 7 in clusters of two blocks that share an operand
//              tile, each loading half of it by a TMA multicast into both: A, on neighbouring N
//              tiles of one M tile, where k makes an even number of 128-filter tiles, else B, on
//              neighbouring M tiles (conv3d_wgmma_cluster.cuh); where version 7 applies. Only the
//              tests and the benchmark ask for it.
//   fp32 on versions 5-8 ("3xTF32", written in session 15, not yet run on a GPU): where a
//              caller asks versions 5-8 for fp32, x and w are split into tf32 heads and tails
//              (fp32_to_tf32_split, cast.cuh) and the tf32 kernel runs the conv of
//              conv3d_split_tf32_shape, whose three channel blocks sum head * head + tail *
//              head + head * tail: every product of the fp32 operands but tail * tail (2^-22 of
//              it), from tf32 tensor cores at a third of their rate and with fp32's error
//              (docs/kernels/conv3d_cuda.md). Costs 12 bytes of workspace per element of x
//              and w. Version 2's FFMA stays the reference and the engine's default for fp32.
//
// Cost per pass: 2 * Conv3dShape::macs() FLOPs; bytes as in kernels/cpu/conv3d.h. Tensors up
// to 2^31 elements (checked). Versions 3-6 take device workspace from the stream-ordered pool
// for bf16 copies of their operands (versions 5 and 6 in tf32 for tf32-rounded fp32 copies: 4 bytes
// per element of x and w); bwd-filter for its split-K partials (at most ~4 * #SM tiles of 128 x 64
// floats).
#pragma once

#include <string>

#include <cuda_runtime.h>

#include "kernels/precision.h"
#include "kernels/shapes.h"

namespace cu3d::cuda {

// Which kernel a call runs: version 2 for every shape, version 3 where conv3d_*_pipelined_supports
// says it applies (version 2 elsewhere), version 4 where conv3d_fwd_wide_supports does (else
// version 3, else 2), or version 5, or its warp-specialized form, version 6, where
// conv3d_fwd_wgmma_supports does (else version 3, else 2). They compute the same function;
// versions 2-4 of the forward issue the same mma over r in the same order, so on the same operands
// they should agree bit for bit; versions 5 and 6 multiply the same operands and accumulate inside
// each wgmma in the hardware's order (6 issues 5's instructions in 5's order: the same bits).
// fp32 runs as 3xTF32 on versions 5-8 where they take the tripled shape (bwd-filter on its version
// 3: conv3d_bwd_filter_runs_split_tf32); asked for any version
// from 3 up it otherwise runs version 3's fp32 form (FFMA, conv3d_fwd_pipelined_ffma_supports),
// which adds version 2's products in version 2's order (the same bits), else version 2.
enum class ConvKernel { implicit_gemm, pipelined, wide, wgmma, wgmma_ws, wgmma_tma, wgmma_cluster };

// Versions 5-8: the wgmma kernels (which also run fp32, as 3xTF32).
inline bool is_wgmma_version(ConvKernel kernel) {
  return kernel == ConvKernel::wgmma || kernel == ConvKernel::wgmma_ws ||
         kernel == ConvKernel::wgmma_tma || kernel == ConvKernel::wgmma_cluster;
}

// True when version 3 takes this shape and precision: tf32 or bf16, c a multiple of 32 (tf32)
// or 64 (bf16), at most 65535 tiles of 128 output positions. (tf32 also needs x and w 16-byte
// aligned, which every allocation is; a misaligned view falls back to version 2.)
bool conv3d_fwd_pipelined_supports(const Conv3dShape& s, Precision precision);

// True when version 3's fp32 form (FFMA on a 128 x 128 tile fed by version 3's cp.async ring)
// takes this shape: fp32 on version 3's tf32 shapes (c a multiple of 32, at most 65535 tiles of
// 128 output positions); x and w must be 16-byte aligned too (else version 2 runs).
bool conv3d_fwd_pipelined_ffma_supports(const Conv3dShape& s, Precision precision);

// True when version 4 takes this shape's forward (for the epilogues that store each output):
// version 3's shapes.
bool conv3d_fwd_wide_supports(const Conv3dShape& s, Precision precision);

// True when versions 5 and 6 take this shape's forward (any epilogue): version 3's shapes, on a
// current device of compute capability 9.0, in a build that compiled the kernels for sm_90a;
// for fp32, the tf32 shapes of conv3d_split_tf32_shape (c a multiple of 32).
bool conv3d_fwd_wgmma_supports(const Conv3dShape& s, Precision precision);

// The conv versions 5-8 run in tf32 for an fp32 conv s: s with 3c input channels, each
// position's heads, tails and heads of x (Tf32Split::head_tail_head) against each filter tap's
// heads, heads and tails of w (Tf32Split::head_head_tail).
Conv3dShape conv3d_split_tf32_shape(const Conv3dShape& s);

// True when version 7 takes this shape's forward (every block; the inference pool through z):
// version 5's shapes at stride 1, with im2col corners a tensor map can hold (-pad_before and
// pad_after - (kernel - 1) within [-16, 15] in each dimension).
bool conv3d_fwd_wgmma_tma_supports(const Conv3dShape& s, Precision precision);

// True when version 8 takes this shape's forward: version 7's shapes (its clusters share the A
// tile where k makes an even number of 128-filter tiles, conv3a-conv5b, else the B tile).
bool conv3d_fwd_wgmma_cluster_supports(const Conv3dShape& s, Precision precision);

// Whether this build and the current device can run version 5 at all (the reason in `why` when
// not).
bool wgmma_available(std::string* why = nullptr);

// y = conv(x, w) + bias. `bias` may be null.
void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream,
                ConvKernel kernel = ConvKernel::implicit_gemm);

// The forward without bias on operands already in the form version 5 or 7 reads (`x` and `w` as
// bf16 arrays for bf16, tf32-rounded floats for tf32; 16-byte aligned), skipping the conversion
// conv3d_fwd makes first: `kernel` wgmma or wgmma_tma, on a shape conv3d_fwd_wgmma_supports takes
// (version 5 where version 7 does not apply). For the benchmark's kernel-to-kernel comparison
// with cudnn::conv3d_fwd_prepared. Not fp32: its kernel is the tf32 conv of
// conv3d_split_tf32_shape on fp32_to_tf32_split's operands.
void conv3d_fwd_prepared(const Conv3dShape& s, const void* x, const void* w, float* y,
                         Precision precision, cudaStream_t stream, ConvKernel kernel);

// Fused block: y = relu(conv(x, w) + bias) in one pass over y (the epilogue applies bias and
// ReLU before the only store), saving a read and a write of y against the unfused pair.
void conv3d_fwd_bias_relu(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Precision precision, cudaStream_t stream,
                          ConvKernel kernel = ConvKernel::implicit_gemm);

// Fused block: pooled = maxpool_p(relu(conv(x, w) + bias)), the pool `p` reading the conv's
// output (p.n, p.in, p.c == s.n, s.out, s.k; any window, stride and padding that
// maxpool3d_fwd takes).
// Inference (`z` null) with windows that tile the output (stride = window of 4 or 8 elements,
// no padding: C3D's pool1-pool4): the GEMM rows are ordered window by window, so each window is
// 4 or 8 consecutive rows of one tile, reduced by shuffles; one plain store per pooled output.
// Only the pooled output is written, |pooled| bytes instead of 2|y| + |pooled| for the conv's
// output written and read back by a separate pool.
// Otherwise (training, or any other pool): the conv's epilogue writes z = relu(conv(x, w) +
// bias) (training's z, or a scratch buffer in inference) and maxpool3d_fwd reads it back (an
// atomicMax per conv output into the pooled output cost more than that read on every kernel
// version: measured on an H100 and an H200, docs/kernels/conv3d_cuda.md). z is what the unfused
// backward takes (maxpool3d_bwd(z, pooled, dpooled) then relu_bwd(z, ...)), so backward stays
// the unfused chain; an argmax index per pooled output would save |z| of memory but needs a
// backward of its own (not done).
// A NaN conv output becomes 0 (fmaxf), as relu(NaN) does on the GPU.
void conv3d_fwd_bias_relu_maxpool(const Conv3dShape& s, const Pool3dShape& p, const float* x,
                                  const float* w, const float* bias, float* pooled, float* z,
                                  Precision precision, cudaStream_t stream,
                                  ConvKernel kernel = ConvKernel::implicit_gemm);

// Whether conv3d_fwd_bias_relu_maxpool's inference form pools p by the first of its epilogues (its
// windows tile the conv's output: the rows go window by window, which versions 2, 3 and 5
// reduce and version 4 does not, so version 4 leaves it to version 3); otherwise it stores the
// conv's output and pools it.
bool conv3d_pool_windows_tile_output(const Pool3dShape& p);

// Fused block for the layer-norm C3D: y = conv(x, w) + bias, and the layer-norm statistics
// mean, rstd = 1/sqrt(var + eps) (biased variance) of each group of `positions_per_group`
// consecutive output positions times k channels (per sample: out.d*out.h*out.w; per
// position: 1), as layer_norm_stats computes them. The GEMM's epilogue sums each output
// row's stored values and squares over each 32- or 64-column group of its tile (shuffles in a
// fixed order) into a small buffer (8 bytes per position per group: 1/16 or 1/32 of y); a
// deterministic double-precision pass adds those per group. Then layer_norm_relu_maxpool_fwd
// (layer_norm.cuh) normalizes, scales, applies ReLU and pools in one pass. y is never read
// back for the statistics (layer_norm_stats would read it once more: 4|y| bytes).
void conv3d_fwd_bias_ln_stats(const Conv3dShape& s, const float* x, const float* w,
                              const float* bias, int64_t positions_per_group, float eps, float* y,
                              float* mean, float* rstd, Precision precision, cudaStream_t stream,
                              ConvKernel kernel = ConvKernel::implicit_gemm);

// True when version 3 takes s's backward-data: stride 1, padding narrower than the kernel, and
// the forward conv dy -> dx (k input channels) one that conv3d_fwd_pipelined_supports takes.
bool conv3d_bwd_data_pipelined_supports(const Conv3dShape& s, Precision precision);

// True when `kernel` runs s's backward-data as that forward conv rather than on version 2: as
// conv3d_bwd_data_pipelined_supports, and for fp32 on versions 5-8 where
// conv3d_fwd_wgmma_supports takes the mirrored forward, or on any version from 3 up where
// conv3d_fwd_pipelined_ffma_supports does.
bool conv3d_bwd_data_runs_as_forward(const Conv3dShape& s, Precision precision, ConvKernel kernel);

// dx = dL/dx from dy. As the forward, it takes a workspace of |w| floats (the transposed filters).
void conv3d_bwd_data(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                     Precision precision, cudaStream_t stream,
                     ConvKernel kernel = ConvKernel::implicit_gemm);

// True when version 3 takes s's backward-filter: bf16 or tf32, c a multiple of 64 (C3D's
// conv2a-conv5b) and k a multiple of 8; any kernel size, stride and padding.
bool conv3d_bwd_filter_pipelined_supports(const Conv3dShape& s, Precision precision);

// True when an fp32 bwd-filter asked for on versions 5-8 runs on version 3 as three tf32
// products (3xTF32, as the forward's): where version 3 takes s in tf32 and three batches of x
// and of dy stay under 2^31 elements; version 2's FFMA otherwise.
bool conv3d_bwd_filter_runs_split_tf32(const Conv3dShape& s, Precision precision,
                                       ConvKernel kernel);

// dw = dL/dw and, unless null, dbias = dL/dbias (always summed in fp32). Version 3 takes a
// workspace of 2 (|x| + |dy|) bytes (their bf16 copies; tf32: 4 (|x| + |dy|), fp32 as 3xTF32:
// 12 (|x| + |dy|)); both versions take the split-K partials.
void conv3d_bwd_filter(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias, Precision precision, cudaStream_t stream,
                       ConvKernel kernel = ConvKernel::implicit_gemm);

// Version 1: operands rounded to `precision` like version 2, fp32 accumulation.
void conv3d_fwd_naive(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                      float* y, Precision precision, cudaStream_t stream);
void conv3d_bwd_data_naive(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                           Precision precision, cudaStream_t stream);
void conv3d_bwd_filter_naive(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                             float* dbias, Precision precision, cudaStream_t stream);

}  // namespace cu3d::cuda
