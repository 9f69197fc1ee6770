// Version 7 of the conv3d forward for tf32 and bf16: version 6 (conv3d_wgmma_ws.cuh: the same
// tiles, ring, mbarriers, wgmma math and epilogues) with its producer warpgroup replaced by one
// thread driving the tensor memory accelerator (TMA). Device code, and the host's set-up of the
// tensor maps; included by conv3d_fwd.cu.
//
// Why: session 9's profile of versions 5 and 6 on an H100 (docs/kernels/conv3d_cuda.md) found
// the gathers' issue rate holding both at half of cuDNN's speed: a 256 x 128 stage is 3072
// cp.async of 16 bytes, each with its own address arithmetic and bounds checks, and 128
// producer threads issue them at half the rate the tensor cores consume stages. cuDNN's Hopper
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
// Where it applies (conv3d_fwd_wgmma_tma_supports): version 5's shapes at stride 1 whose
// padding fits the map's corners, for the epilogues that store rows in GEMM order (the stores,
// bias + ReLU, the pool blocks' z, the layer-norm statistics; bwd-data as the mirrored
// forward). Version 5's inference pool block reorders the rows window by window, which an
// im2col load cannot: with version 7 that block stores z and pools it after (conv3d_fwd.cu).
//
// Cost: as version 5; the shared memory saves version 6's corner table.
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

// The producer thread's loop: for each r-tile, once its slot is free, the expected bytes and the
// two loads. The tile's first output position gives the im2col load's starting pixel (the
// position less the padding, stride 1), the tile's tap its offset.
template <class Tile, Precision P, class Problem>
__device__ void produce_tma(const Problem& prob, const TmaMaps& maps, int m0, int n0, uint32_t base,
                            uint64_t* full, uint64_t* empty) {
  constexpr int kPerRow = kRowBytes / (P == Precision::bf16 ? 2 : 4);
  const Geometry& g = prob.g;
  const igemm::Pixel o = igemm::split_pixel(uint32_t(m0), g.div_od, g.div_oh, g.div_ow);
  const int tiles = prob.R / kPerRow;
  ptx::prefetch_tensormap(&maps.x);
  ptx::prefetch_tensormap(&maps.w);
  for (int kt = 0; kt < tiles; ++kt) {
    const int slot = kt % kStages;
    if (kt >= kStages) mbarrier_wait(&empty[slot], (kt / kStages - 1) % 2);
    const uint32_t a_tile = base + slot * Tile::kStageBytes;
    const TileTap t = tile_tap(g, kt * kPerRow);
    ptx::mbarrier_arrive_expect_tx(&full[slot], Tile::kStageBytes);
    ptx::tma_load_im2col_5d(a_tile, &maps.x, &full[slot], t.channel, o.x - g.pw, o.y - g.ph,
                            o.z - g.pd, o.n, uint16_t(t.tap.w), uint16_t(t.tap.h),
                            uint16_t(t.tap.d));
    ptx::tma_load_tile_2d(a_tile + Tile::kTileABytes, &maps.w, &full[slot], kt * kPerRow, n0);
  }
}

#endif  // CU3D_WGMMA_DEVICE

// The kernel on `Tile` (as version 5's), version 6's 384 threads: two warpgroups of math, one
// whose first thread drives the TMA. Grid: (N tiles, M tiles). Launch bounds (384, 1).
template <class Problem, Precision P, class Tile>
__global__ void __launch_bounds__(kWsThreads, 1)
    conv3d_fwd_wgmma_tma(Problem prob, const __grid_constant__ TmaMaps maps) {
#if defined(CU3D_WGMMA_DEVICE)
  __shared__ uint64_t full[kStages], empty[kStages];
  const int n_tile = blockIdx.x, n0 = n_tile * kBN, m0 = blockIdx.y * Tile::kBM;
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
    if (threadIdx.x == kMathThreads) produce_tma<Tile, P>(prob, maps, m0, n0, base, full, empty);
  } else {
    ptx::setmaxnreg_inc<kMathRegisters>();
    GroupMath<P, Tile> math;
    consume<Tile, P, StageWrites::async_proxy>(prob, math, base, full, empty);
    igemm::epilogue(prob, math, m0, n0, n_tile, 0);
  }
#else
  __trap();  // not built for sm_90a: conv3d_fwd_wgmma_tma_supports keeps the host from launching
#endif
}

}  // namespace cu3d::cuda::pipelined::wgmma
