// What one TMA load delivers, for the GPU tests: a single im2col load run on its own and its
// rows copied back to the host. Version 7 of the conv forward (conv3d_wgmma_tma.cuh) rests on
// how the hardware walks an im2col box (tensor_map.h); when its outputs disagree with version
// 5's, this shows which pixel and channel each row received, so one device session can tell
// a wrong starting pixel from a wrong order of offsets or corners. And version 8's way of
// sharing a tile (conv3d_wgmma_cluster.cuh): two blocks of a cluster each multicasting one load
// into both, with the remote arrivals and cluster barriers around it, so that a failure of
// version 8 can be told from a failure of the multicast itself. Host-callable from plain C++.
//
// Cost: one block (or one cluster of two), one load of `spec.pixels` x 128 bytes per block; not
// for production use.
#pragma once

#include <vector>

#include <cuda_runtime.h>

#include "kernels/cuda/tensor_map.h"

namespace cu3d::cuda {

// An im2col load's coordinates: the starting pixel (c, w, h, d, n) and the offsets.
struct Im2colLoad {
  int c = 0, w = 0, h = 0, d = 0, n = 0;
  Dims3 offset;
};

// The rows one load of `spec` (its base in device memory) at `at` lands in shared memory,
// un-swizzled: spec.pixels rows of 128 bytes. Needs wgmma_available() (an sm_90a build on a
// compute capability 9.0 device). Synchronizes `stream`.
std::vector<unsigned char> tma_im2col_rows(const Im2colMapSpec& spec, const Im2colLoad& at,
                                           cudaStream_t stream);

// A cluster of two blocks: block r loads `at[r]` by a multicast into rows r * spec.pixels ..
// (r + 1) * spec.pixels - 1 of both blocks' shared memory; each block returns what it holds once
// both halves have landed, un-swizzled: [0] block 0's, [1] block 1's, 2 * spec.pixels rows of
// 128 bytes each (spec.pixels a multiple of 8). Needs wgmma_available(). Synchronizes `stream`.
struct ClusterRows {
  std::vector<unsigned char> block[2];
};
ClusterRows tma_im2col_rows_multicast(const Im2colMapSpec& spec, const Im2colLoad (&at)[2],
                                      cudaStream_t stream);

}  // namespace cu3d::cuda
