// Layer normalization on the GPU: the CUDA twin of kernels/cpu/layer_norm.h (both variants of
// the (groups, m, c) formulation; biased statistics over the m*c elements of a group, per-
// channel gamma/beta; mean and rstd saved per group).
//
// Per sample (large groups) with c % 4 == 0 dividing 1024 (C3D's 64-512 channels): each sample
// read once into the shared memory of a team of blocks, which wait for each other's sums, then
// normalized from there (layer_norm.cu, "resident in shared memory"): 8 bytes per element
// forward, 12 backward, where the shared memory of the blocks a device holds at once takes a
// sample (x; backward x and dy); where not (conv1a; conv2a's backward on an H100), as much as it
// takes, the rest read twice. Selectable (SampleNormPath): statistics and normalize in one
// launch, a sample apart (layer_norm.cu, "per sample in one launch"). Each
// block sums a chunk of sample s, the sample's last block writes its statistics, then the block
// normalizes the same chunk of sample s - 1, read one sample earlier and still in L2 where a
// sample fits (conv2a's 26 MB and smaller). Backward likewise: a chunk's group sums and channel
// sums, then dx of the chunk a sample back. Each reads x (and dy) once from DRAM where a sample
// fits in L2, twice where not.
//
// Other large groups: forward (1) each block sums x and x^2 in double over a chunk of 16 Ki
// elements of one group; (2) a warp per group (a thread where groups have under 32 chunks) adds
// its chunks in a fixed order and writes mean, rstd (deterministic, and double keeps E[x^2] -
// mean^2 exact enough for fp32 data); (3) an elementwise pass writes y (4 channels per thread,
// 32-bit indices, where c % 4 == 0), sweeping backwards to meet first what (1) read last, still in
// L2. Backward: the same two-level sums of g = dy*gamma and g*xhat per group, an elementwise pass
// for dx (backwards too), and per-channel column sums of dy*xhat and dy over all rows for dgamma,
// dbeta. Cost: forward reads x twice and writes y (12 bytes per element), backward reads x and dy
// twice and writes dx (20 bytes per element): memory-bound.
//
// One-row groups (per position, m = 1) of c <= 512 channels, c % 4 == 0: a team of 8-32 lanes
// holds a row in registers (float4s), so forward reads x once and writes y (8 bytes per element),
// backward reads x and dy once and writes dx (12 bytes per element), its dgamma and dbeta summed
// per lane, then per block in a fixed order, then over the blocks.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cpu/layer_norm.h"
#include "kernels/shapes.h"

namespace cu3d::cuda {

using cpu::LayerNormShape;

// How layer_norm_fwd and layer_norm_bwd run per-sample groups (several positions, c a multiple
// of 4 dividing 1024, 16-byte aligned arrays): `resident`, each sample read once into the shared
// memory of a team of blocks resident together, normalized from there (the op's own bytes: 8 per
// element forward, 12 backward; a sample larger than the shared memory of all the blocks the
// device holds at once, partly, the rest read twice); `pipelined`, statistics and normalize a
// sample apart in one launch, the re-read from L2 where a sample fits there; `automatic`,
// resident unless a block's shared memory cannot take a 256-float4 slice. Other shapes ignore it
// but for `resident`, which throws.
enum class SampleNormPath { automatic, resident, pipelined };

void layer_norm_fwd(const LayerNormShape& s, const float* x, const float* gamma, const float* beta,
                    float eps, float* y, float* mean, float* rstd, cudaStream_t stream,
                    SampleNormPath path = SampleNormPath::automatic);

// The statistics half of the forward pass alone: mean and rstd per group (the first two
// kernels of layer_norm_fwd). With layer_norm_relu_maxpool_fwd it forms the layer-norm C3D's
// block: statistics, then one pass for normalize + scale/offset + ReLU + pool.
void layer_norm_stats(const LayerNormShape& s, const float* x, float eps, float* mean, float* rstd,
                      cudaStream_t stream);

// The statistics from partial sums, the second half of conv3d_fwd_bias_ln_stats: each group
// is `rows` rows of `channels` values, and sums (groups, rows, parts) holds for each part of a
// row, columns [part * width, min((part + 1) * width, channels)), the sum of its values and
// their centred sum of squares m2. Combined in double as sum(m2 + sum^2 / count) - total^2 /
// (rows * channels), which loses nothing to the values' common offset. mean and rstd per group
// as layer_norm_stats.
void layer_norm_stats_from_row_sums(int64_t groups, int64_t rows, int parts, int channels,
                                    int width, const float2* sums, float eps, float* mean,
                                    float* rstd, cudaStream_t stream);

// Fused block: y = maxpool(relu(layer_norm(x))) with the saved statistics, for a layer norm
// whose groups are runs of `m` consecutive positions of the pool's input (m = d*h*w: per
// sample; m = 1: per position). x is the pool's input (p.n, p.in, p.c), gamma/beta (p.c).
// Inference (`z` null): one kernel, reading each input once and writing only the pooled output
// (|x| + |y| bytes instead of 3|x| + |y| for normalize, ReLU and pool apart). Training (`z`
// given): z = relu(layer_norm(x)) is written for the backward pass too; by the same kernel where
// every input position lies in exactly one window (every C3D pool: |x| + |z| + |y| bytes),
// else by a pass of its own that the pool then reads back (|z| bytes more).
void layer_norm_relu_maxpool_fwd(const Pool3dShape& p, int64_t m, const float* x,
                                 const float* gamma, const float* beta, const float* mean,
                                 const float* rstd, float* y, float* z, cudaStream_t stream);

void layer_norm_bwd(const LayerNormShape& s, const float* x, const float* gamma, const float* mean,
                    const float* rstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                    cudaStream_t stream, SampleNormPath path = SampleNormPath::automatic);

}  // namespace cu3d::cuda
