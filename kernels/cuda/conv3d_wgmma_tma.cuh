// Version 7 of the conv3d forward for tf32 and bf16: version 6 (conv3d_wgmma_ws.cuh: the same
// tiles, ring, mbarriers, wgmma math and epilogues) with its producer warpgroup replaced by one
// thread driving the tensor memory accelerator (TMA). Device code, and the host's set-up of the
// tensor maps; included by conv3d_fwd.cu.
//
// Why: session 9's profile of versions 5 and 6 on an H100 (docs/kernels/conv3d_cuda.md) found
// the gathers' issue rate holding both at half of cuDNN's speed: a 256 x 128 stage is 3072
// cp.async of 16 bytes, each with its own address arithmetic and bounds checks, and neither 256
// threads that also multiply (version 5) nor 128 that only gather (version 6) issue them as fast
// as the tensor cores consume stages. cuDNN's Hopper
// kernels have no per-element address code: the TMA gathers for them. Here a stage is two
// instructions from one thread:
//   A  an im2col load (tensor_map.h, Im2colMapSpec): the BM output positions from the tile's
//      first, each one's input pixel shifted by the stage's tap, 64 bf16 (32 fp32) channels from
//      the stage's channel; zeros in the padding and past the last position. The stage's r
//      range lies within one tap (c is a multiple of the stage's r extent, as for version 3), so
//      one offset serves the whole tile;
//   B  a tiled load of the filters: 128 rows (filters) of the stage's 64 (32) values of r.
// Both land as 128-byte rows with the 128-byte swizzle: the layout versions 3-6 write with
// cp.async, so GroupMath's descriptors read them unchanged and version 7 issues version 5's
// wgmma on the same bytes in the same order (the same bits; the GPU suite compares them).
//
// The hand-over: full[s] now expects one arrival, the producer's mbarrier.arrive.expect_tx with
// the stage's bytes, and completes when both copies' bytes have arrived too (complete_tx); the
// TMA writes through the async proxy, so the math needs no proxy fence after its wait. empty[s]
// is version 6's. The producer warpgroup keeps its registers' share low (setmaxnreg) and all
// but its first thread leave at once; that one waits only for free slots.
//
// Persistent: the grid has one block per SM (at most one per output tile), and block b
// multiplies output tiles b, b + gridDim.x, ... (the N tiles of one M tile consecutive, as in
// the other versions' grids, so the A rows they share come from L2). The ring runs on across a
// block's tiles: while the math warpgroups store one tile's outputs, the producer is already
// loading the next tile's first stages. In versions 5 and 6 a block's SM multiplies nothing
// while the block stores its outputs and until the next block has filled its ring.
//
// Where it applies (conv3d_fwd_wgmma_tma_supports): version 5's shapes at stride 1 whose
// padding fits the map's corners, for the epilogues that store rows in GEMM order (the stores,
// bias + ReLU, the pool blocks' z, the layer-norm statistics; bwd-data as the mirrored
// forward). Version 5's inference pool block reorders the rows window by window, which an
// im2col load cannot: with version 7 that block stores z and pools it after (conv3d_fwd.cu).
//
// Cost: as version 5, 2 * k * taps * c * M FLOPs; reads x and w in the compute type (x once per
// N tile, from L2 after the first), writes y. Shared memory: version 5's ring, without version
// 6's corner table.
#pragma once

#include "kernels/cuda/conv3d_wgmma_ws.cuh"
#include "kernels/cuda/tensor_map.h"

namespace cu3d::cuda::pipelined::wgmma {

// The two maps a launch passes: x (im2col) and the filters (tiled), in the compute type.
struct TmaMaps {
  TensorMap x, w;
};

// The maps of conv `s` for `Tile` on x and w in the compute type (`element_bytes` 2 or 4);
// `what` names the op in errors.
template <class Tile>
TmaMaps conv_tma_maps(const Conv3dShape& s, const void* x, const void* w, int element_bytes,
                      const std::string& what) {
  static_assert(kRowBytes == 128, "a stage row is one 128-byte swizzle row");
  return {encode_im2col_map(conv_input_map(s, x, element_bytes, Tile::kBM), what),
          encode_tiled_map(conv_filter_map(s, w, element_bytes, Tile::kBN), what)};
}

#if defined(CU3D_WGMMA_DEVICE)

// The output tiles of the GEMM in the order the blocks take them: tile t is N tile t % n_tiles of
// M tile t / n_tiles.
template <class Tile>
struct OutputTiles {
  int n_tiles, count;
  __device__ OutputTiles(int m, int n)
      : n_tiles((n + kBN - 1) / kBN), count(n_tiles * ((m + Tile::kBM - 1) / Tile::kBM)) {}
  __device__ int n_tile(int t) const { return t % n_tiles; }
  __device__ int m0(int t) const { return t / n_tiles * Tile::kBM; }
};

// The producer thread's loop: for each of the block's output tiles and each of its r-tiles, once
// the slot of the ring's next stage is free, the expected bytes and the two loads. The tile's
// first output position gives the im2col load's starting pixel (the position less the padding,
// stride 1), the r-tile's tap its offset.
template <class Tile, Precision P, class Problem>
__device__ void produce_tma(const Problem& prob, const TmaMaps& maps, uint32_t base, uint64_t* full,
                            uint64_t* empty) {
  constexpr int kPerRow = kRowBytes / (P == Precision::bf16 ? 2 : 4);
  const Geometry& g = prob.g;
  const OutputTiles<Tile> tiles(prob.M, prob.N);
  const int r_tiles = prob.R / kPerRow;
  ptx::prefetch_tensormap(&maps.x);
  ptx::prefetch_tensormap(&maps.w);
  int stage = 0;
  for (int t = blockIdx.x; t < tiles.count; t += gridDim.x) {
    const int n0 = tiles.n_tile(t) * kBN;
    const igemm::Pixel o = igemm::split_pixel(uint32_t(tiles.m0(t)), g.div_od, g.div_oh, g.div_ow);
    for (int kt = 0; kt < r_tiles; ++kt, ++stage) {
      const int slot = stage % kStages;
      if (stage >= kStages) mbarrier_wait(&empty[slot], (stage / kStages - 1) % 2);
      const uint32_t a_tile = base + slot * Tile::kStageBytes;
      const TileTap tap = tile_tap(g, kt * kPerRow);
      ptx::mbarrier_arrive_expect_tx(&full[slot], Tile::kStageBytes);
      ptx::tma_load_im2col_5d(a_tile, &maps.x, &full[slot], tap.channel, o.x - g.pw, o.y - g.ph,
                              o.z - g.pd, o.n, uint16_t(tap.tap.w), uint16_t(tap.tap.h),
                              uint16_t(tap.tap.d));
      ptx::tma_load_tile_2d(a_tile + Tile::kTileABytes, &maps.w, &full[slot], kt * kPerRow, n0);
    }
  }
}

#endif  // CU3D_WGMMA_DEVICE

// The kernel on `Tile` (as version 5's), version 6's 384 threads: two warpgroups of math, one
// whose first thread drives the TMA. Grid: any number of blocks (the host launches one per SM,
// at most one per output tile), each taking every gridDim.x-th output tile. Launch bounds
// (384, 1).
template <class Problem, Precision P, class Tile>
__global__ void __launch_bounds__(kWsThreads, 1)
    conv3d_fwd_wgmma_tma(Problem prob, const __grid_constant__ TmaMaps maps) {
#if defined(CU3D_WGMMA_DEVICE)
  __shared__ uint64_t full[kStages], empty[kStages];
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      ptx::mbarrier_init(&full[s], 1);
      ptx::mbarrier_init(&empty[s], kMathThreads);
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();
  const uint32_t base = (ptx::shared_address(ptx::dynamic_shared_memory()) + kAtomBytes - 1) &
                        ~uint32_t(kAtomBytes - 1);
  if (threadIdx.x >= kMathThreads) {
    ptx::setmaxnreg_dec<kProducerRegisters>();
    if (threadIdx.x == kMathThreads) produce_tma<Tile, P>(prob, maps, base, full, empty);
  } else {
    ptx::setmaxnreg_inc<kMathRegisters>();
    const OutputTiles<Tile> tiles(prob.M, prob.N);
    int stage = 0;
    for (int t = blockIdx.x; t < tiles.count; t += gridDim.x) {
      GroupMath<P, Tile> math;
      stage = consume<Tile, P, StageWrites::async_proxy>(prob, math, base, full, empty, stage,
                                                         /*release_last=*/true);
      igemm::epilogue(prob, math, tiles.m0(t), tiles.n_tile(t) * kBN, tiles.n_tile(t), 0);
    }
  }
#else
  __trap();  // not built for sm_90a: conv3d_fwd_wgmma_tma_supports keeps the host from launching
#endif
}

}  // namespace cu3d::cuda::pipelined::wgmma
