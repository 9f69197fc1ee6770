// Version 8 of the conv3d forward for tf32 and bf16: version 7 (conv3d_wgmma_tma.cuh: the same
// tiles, ring, TMA loads, wgmma math and epilogues) run by clusters of two blocks that share an
// operand tile. Device code, and the host's set-up of the tensor maps; included by
// conv3d_fwd.cu. Written in session 15 and run only in the host emulation so far.
//
// Why: by Nsight Compute on an H100 (session 14), cuDNN's fastest bf16 kernel for conv3b and
// conv4b is persistent like version 7, on the same 256 x 128 x 64 tile with two consumer
// warpgroups, but launched in clusters of 2, and ~1.3x faster; version 7's consumers spend about
// half their stall cycles waiting for stages. A 256 x 128 stage is 48 KB of loads for 4.2 MFLOP:
// at the bf16 peak all 132 SMs would pull ~9 TB/s out of L2. The two blocks of a cluster here
// share one operand tile (ClusterShare):
//   a_tile  where k makes an even number of 128-filter N tiles (conv3a-conv5b): the blocks take
//           neighbouring N tiles of one M tile, so they multiply the same 256 rows of the implicit
//           GEMM; each loads half of the A tile (one im2col load of 128 rows) by a multicast into
//           both blocks' shared memory, and its own B tile: 32 KB of L2 reads per block and
//           stage instead of 48;
//   b_tile  otherwise (conv2a, k = 128): neighbouring M tiles of one N tile, each loading its own
//           A tile and half of the shared B tile (64 filters) into both: 40 KB instead of 48.
//
// The hand-over, version 7's with the peer in it:
//   full[s]   as version 7's: the block's producer arrives once, expecting the whole stage's
//             bytes, which its own loads and the peer's multicast complete (a multicast's bytes
//             may come before the arrival: the phase waits for both);
//   empty[s]  expects the math warps of both blocks: a slot of either block is written by both
//             producers (its own loads, the peer's half of the shared tile), so a producer may
//             refill slot s only when both blocks' consumers are done with it. Each math warp's
//             lane 0 arrives on its own block's and on the peer's (mapa,
//             mbarrier.arrive.shared::cluster) once the warp's lanes are done (ReleaseInCluster).
// The mbarriers live in dynamic shared memory, after the ring, where the peer reaches them; a
// cluster barrier after their init keeps the peer's first multicast from meeting one
// uninitialized, and one at the end keeps a block from leaving while the peer may still write
// into it or arrive on it (so the producer warpgroup's idle threads stay until then too).
//
// Persistent as version 7: cluster c (blocks 2c and 2c + 1) takes units c, c + clusters, ...; a
// unit is an M tile and a pair of N tiles, block `rank` taking N tile 2 * pair + rank (a_tile),
// or a pair of M tiles and an N tile, block `rank` taking M tile 2 * pair + rank (b_tile; with an
// odd number of M tiles, the last pair's second tile lies past the last row: that block loads and
// multiplies zeros, so that its peer gets its half of B, and stores nothing). Both blocks walk
// the same units and stages in lockstep, as their shared slots need. The host
// launches as many clusters as run at once (cudaOccupancyMaxActiveClusters: a GPC with an odd
// number of free SMs leaves one idle).
//
// Where it applies (conv3d_fwd_wgmma_cluster_supports): version 7's shapes and epilogues.
//
// Cost: as version 7, with the L2-to-shared traffic of the shared tile halved.
#pragma once

#include "kernels/cuda/conv3d_wgmma_tma.cuh"

namespace cu3d::cuda::pipelined::wgmma {

constexpr int kClusterBlocks = 2;

// Version 8's dynamic shared memory: version 7's (the ring and its alignment) and the full and
// empty mbarriers after it.
template <class Tile>
constexpr int kClusterSharedBytes = Tile::kSharedBytes + int(2 * kStages * sizeof(uint64_t));

// Which operand tile the two blocks of a cluster share (each loading half of it into both).
enum class ClusterShare { a_tile, b_tile };

// The tile a cluster shares for a GEMM of n columns: A where the N tiles pair up.
CU3D_HOST_DEVICE inline ClusterShare cluster_share(int n) {
  return (n + kBN - 1) / kBN % kClusterBlocks == 0 ? ClusterShare::a_tile : ClusterShare::b_tile;
}

// The maps of conv `s` for `Tile` on x and w in the compute type: version 7's, with boxes of half
// the shared tile's rows.
template <class Tile, ClusterShare S>
TmaMaps conv_cluster_maps(const Conv3dShape& s, const void* x, const void* w, int element_bytes,
                          const std::string& what) {
  constexpr int kARows = S == ClusterShare::a_tile ? Tile::kBM / kClusterBlocks : Tile::kBM;
  constexpr int kBRows = S == ClusterShare::b_tile ? Tile::kBN / kClusterBlocks : Tile::kBN;
  return {encode_im2col_map(conv_input_map(s, x, element_bytes, kARows), what),
          encode_tiled_map(conv_filter_map(s, w, element_bytes, kBRows), what)};
}

// The units of work (see the top): a_tile: unit u is pair u % pairs of N tiles of M tile
// u / pairs, block `rank` taking N tile 2 * pair + rank (an even number of N tiles); b_tile:
// unit u is N tile u % n_tiles of pair u / n_tiles of M tiles, block `rank` taking M tile
// 2 * pair + rank.
template <class Tile, ClusterShare S>
struct ClusterTiles {
  int n_tiles, pairs, count;
  CU3D_HOST_DEVICE ClusterTiles(int m, int n) : n_tiles((n + kBN - 1) / kBN) {
    const int m_tiles = (m + Tile::kBM - 1) / Tile::kBM;
    pairs = S == ClusterShare::a_tile ? n_tiles / kClusterBlocks
                                      : (m_tiles + kClusterBlocks - 1) / kClusterBlocks;
    count = S == ClusterShare::a_tile ? pairs * m_tiles : pairs * n_tiles;
  }
  CU3D_HOST_DEVICE int n_tile(int u, uint32_t rank) const {
    return S == ClusterShare::a_tile ? u % pairs * kClusterBlocks + int(rank) : u % n_tiles;
  }
  CU3D_HOST_DEVICE int m0(int u, uint32_t rank) const {
    return (S == ClusterShare::a_tile ? u / pairs : u / n_tiles * kClusterBlocks + int(rank)) *
           Tile::kBM;
  }
};

#if defined(CU3D_WGMMA_DEVICE)

// A slot's release by a warp of math: once its lanes have all seen their wgmma on the slot
// complete (__syncwarp orders their waits before lane 0 goes on), lane 0 arrives on the slot's
// empty barrier in both blocks. One remote arrival per warp, not per thread: 8 per block and
// slot rather than 256 through the cluster's network.
constexpr int kReleasesPerBlock = kMathThreads / 32;
struct ReleaseInCluster {
  __device__ void operator()(uint64_t* bar) const {
    __syncwarp();
    if (threadIdx.x % 32 != 0) return;
    for (uint32_t rank = 0; rank < kClusterBlocks; ++rank)
      ptx::mbarrier_arrive_cluster(bar, rank);
  }
};

// The producer thread's loop: version 7's, with this block's half of the shared tile loaded into
// both blocks of the cluster: for A, its rows' first output position gives the im2col load's
// pixel; for B, its first filter the tiled load's row.
template <class Tile, Precision P, ClusterShare S, class Problem>
__device__ void produce_cluster(const Problem& prob, const TmaMaps& maps, uint32_t base,
                                uint64_t* full, uint64_t* empty, uint32_t rank) {
  constexpr int kPerRow = kRowBytes / (P == Precision::bf16 ? 2 : 4);
  constexpr bool kShareA = S == ClusterShare::a_tile;
  constexpr int kARows = kShareA ? Tile::kBM / kClusterBlocks : 0;  // per rank: the offset in A
  constexpr int kBRows = kShareA ? 0 : kBN / kClusterBlocks;        // and in B
  constexpr uint16_t kBothBlocks = (1u << kClusterBlocks) - 1;
  const Geometry& g = prob.g;
  const ClusterTiles<Tile, S> tiles(prob.M, prob.N);
  const int r_tiles = prob.R / kPerRow;
  const int clusters = int(gridDim.x) / kClusterBlocks;
  const int a_row = int(rank) * kARows, b_row = int(rank) * kBRows;
  ptx::prefetch_tensormap(&maps.x);
  ptx::prefetch_tensormap(&maps.w);
  int stage = 0;
  for (int u = int(blockIdx.x) / kClusterBlocks; u < tiles.count; u += clusters) {
    const int n0 = tiles.n_tile(u, rank) * kBN + b_row;
    const igemm::Pixel o =
        igemm::split_pixel(uint32_t(tiles.m0(u, rank) + a_row), g.div_od, g.div_oh, g.div_ow);
    for (int kt = 0; kt < r_tiles; ++kt, ++stage) {
      const int slot = stage % kStages;
      if (stage >= kStages) mbarrier_wait(&empty[slot], (stage / kStages - 1) % 2);
      const uint32_t a_tile = base + slot * Tile::kStageBytes;
      const TileTap tap = tile_tap(g, kt * kPerRow);
      ptx::mbarrier_arrive_expect_tx(&full[slot], Tile::kStageBytes);
      ptx::tma_load_im2col_5d_multicast(a_tile + a_row * kRowBytes, &maps.x, &full[slot],
                                        tap.channel, o.x - g.pw, o.y - g.ph, o.z - g.pd, o.n,
                                        uint16_t(tap.tap.w), uint16_t(tap.tap.h),
                                        uint16_t(tap.tap.d), kShareA ? kBothBlocks : 0);
      ptx::tma_load_tile_2d_multicast(a_tile + Tile::kTileABytes + b_row * kRowBytes, &maps.w,
                                      &full[slot], kt * kPerRow, n0, kShareA ? 0 : kBothBlocks);
    }
  }
}

#endif  // CU3D_WGMMA_DEVICE

// The kernel on `Tile` sharing tile `S`, version 7's 384 threads per block, in clusters of two
// blocks along x. Grid: an even number of blocks (the host launches as many clusters as fit at
// once, at most one per unit). Launch bounds (384, 1).
template <class Problem, Precision P, class Tile, ClusterShare S>
__global__ void __launch_bounds__(kWsThreads, 1)
    conv3d_fwd_wgmma_cluster(Problem prob, const __grid_constant__ TmaMaps maps) {
#if defined(CU3D_WGMMA_DEVICE)
  unsigned char* dynamic = ptx::dynamic_shared_memory();
  auto* full = reinterpret_cast<uint64_t*>(dynamic + Tile::kSharedBytes);
  uint64_t* empty = full + kStages;
  const uint32_t rank = ptx::cluster_ctarank();
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      ptx::mbarrier_init(&full[s], 1);
      ptx::mbarrier_init(&empty[s], kClusterBlocks * kReleasesPerBlock);
    }
    ptx::fence_mbarrier_init();
  }
  ptx::cluster_sync();  // both blocks' inits, before any multicast or arrival reaches them
  const uint32_t base = (ptx::shared_address(dynamic) + kAtomBytes - 1) & ~uint32_t(kAtomBytes - 1);
  if (threadIdx.x >= kMathThreads) {
    ptx::setmaxnreg_dec<kProducerRegisters>();
    if (threadIdx.x == kMathThreads)
      produce_cluster<Tile, P, S>(prob, maps, base, full, empty, rank);
  } else {
    ptx::setmaxnreg_inc<kMathRegisters>();
    const ClusterTiles<Tile, S> tiles(prob.M, prob.N);
    const int clusters = int(gridDim.x) / kClusterBlocks;
    int stage = 0;
    for (int u = int(blockIdx.x) / kClusterBlocks; u < tiles.count; u += clusters) {
      GroupMath<P, Tile> math;
      stage = consume<Tile, P, StageWrites::async_proxy>(prob, math, base, full, empty, stage,
                                                         /*release_last=*/true, ReleaseInCluster{});
      const int n_tile = tiles.n_tile(u, rank);
      igemm::epilogue(prob, math, tiles.m0(u, rank), n_tile * kBN, n_tile, 0);
    }
  }
  __syncwarp();         // the producer's lane 0 rejoins its warp for the aligned barrier
  ptx::cluster_sync();  // the peer may still multicast into this block or arrive on it until here
#else
  __trap();  // not built for sm_90a: conv3d_fwd_wgmma_cluster_supports keeps the host from it
#endif
}

}  // namespace cu3d::cuda::pipelined::wgmma
