// Version 6 of the conv3d forward for tf32 and bf16: version 5 (conv3d_wgmma.cuh: the same tiles,
// ring, gathers, wgmma math and epilogues) with its warps specialized. Device code only: included
// by conv3d_fwd.cu.
//
// Why: in version 5 every thread both gathers and multiplies. Each stage it issues its 12
// cp.async of the tile 2 ahead (a shared-memory corner, bounds checks and an address each), waits
// for the stage it needs, meets the whole block at a barrier, then issues the stage's wgmma: the
// tensor cores wait whenever the slowest warp's gathers or the barrier run past one stage's math.
// Measured on an H200 (session 7) it stays at 47-50 % of the tensor cores' peak on C3D's big
// layers, where cuDNN's Hopper kernels reach 65-72 %.
//
// Here a third warpgroup (threads 256-383) only gathers, and the two warpgroups of math (threads
// 0-255, exactly version 5's, so GroupMath and the epilogues run unchanged) only wait for stages,
// issue wgmma and release stages. Producer and consumers meet through a pair of mbarriers per
// ring slot instead of a block-wide barrier per stage:
//   full[s]   completes when the copies of the slot's tile by all 128 producer threads have
//             landed: each producer thread issues its copies, then cp.async.mbarrier.arrive,
//             which has the copy unit arrive for it once they have landed, and goes straight on
//             to the next tile. The consumers wait on it, then fence (fence.proxy.async: the
//             copies wrote through the generic proxy, the tensor cores read through the async
//             one) before the stage's wgmma;
//   empty[s]  completes when all 256 consumer threads have seen the slot's wgmma complete: the
//             producer waits on it before refilling the slot.
// A phase of either completes once per use of the slot, so the tile kt waits on parity
// (kt / kStages) % 2 of full, and the refill of its slot on parity (kt / kStages - 1) % 2 of
// empty. The math releases tile kt's slot once it has issued tile kt + 1 and seen tile kt's wgmma
// complete, so the producer can run up to 3 tiles ahead of the math. A wait that is never
// answered traps after seconds (mbarrier_wait) rather than hanging the process.
//
// Session 9 measured the first form on an H100 (docs/kernels/conv3d_cuda.md): there each
// producer thread waited (cp.async.wait_group) for tile kt - 2 to land and arrived on its full
// barrier itself before issuing tile kt, so at most two tiles were ever in flight and the
// producer spent its time waiting on its own copies: 0.6x version 5's speed, with bit-identical
// results. The copy unit's arrival removes that wait.
//
// Registers: the producer needs few, the math its 128 (tall tile) accumulators and the
// epilogue's indices. setmaxnreg moves them: the kernel starts at 168 per thread (384 threads
// in the 64 K register file), the producer drops to 40, the consumers rise to 232.
//
// Cost: as version 5.
#pragma once

#include "kernels/cuda/conv3d_wgmma.cuh"

namespace cu3d::cuda::pipelined::wgmma {

constexpr int kMathThreads = kThreads;  // warpgroups 0 and 1: version 5's; 2 is the producer
constexpr int kWsThreads = kMathThreads + kProducerThreads;  // 384
constexpr int kProducerRegisters = 40, kMathRegisters = 232;
static_assert(kMathThreads * kMathRegisters + kProducerThreads * kProducerRegisters <= 65536,
              "the registers the warpgroups ask for fit the register file");

#if defined(CU3D_WGMMA_DEVICE)

// Waits until the phase of parity `parity` has completed. A hand-over that never comes (a bug in
// the protocol) traps after 2^24 polls, seconds, instead of hanging the process: the launch then
// fails with an error, and the test that made it says which kernel.
__device__ inline void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  for (uint32_t polls = 0; !ptx::mbarrier_try_wait(bar, parity); ++polls)
    if (polls == (1u << 24)) __trap();
}

// The producer warpgroup's loop: the gathers of forward_main_loop with its 128 threads
// (producer_copy_row: 16 rows per pass instead of 32), slot by slot as the consumers free them.
template <class Tile, Precision P, class Problem>
__device__ void produce(const Problem& prob, const void* x, const void* w, const RowCorner* corners,
                        int n0, uint32_t base, uint64_t* full, uint64_t* empty) {
  using Element = std::conditional_t<P == Precision::bf16, __nv_bfloat16, float>;
  constexpr int kPerChunk = kChunkBytes / int(sizeof(Element));
  constexpr int kPerRow = kRowBytes / int(sizeof(Element));
  constexpr int kCopiesA = Tile::kBM / kProducerRowsPerPass, kCopiesB = kBN / kProducerRowsPerPass;
  const Geometry& g = prob.g;
  const int tid = threadIdx.x - kMathThreads, chunk = copy_chunk(tid);
  const auto* xs = static_cast<const Element*>(x);
  const auto* ws = static_cast<const Element*>(w);
  const int tiles = prob.R / kPerRow;
  for (int kt = 0; kt < tiles; ++kt) {
    const int slot = kt % kStages;
    if (kt >= kStages) mbarrier_wait(&empty[slot], (kt / kStages - 1) % 2);
    const uint32_t a_tile = base + slot * Tile::kStageBytes, b_tile = a_tile + Tile::kTileABytes;
    const int r0 = kt * kPerRow;
    const TileTap t = tile_tap(g, r0);
    const int c0 = t.channel + chunk * kPerChunk;
#pragma unroll
    for (int j = 0; j < kCopiesA; ++j) {
      const int row = producer_copy_row(tid, j);
      const int at = a_chunk(g, corners[row], t.tap, c0);
      ptx::cp_async16(a_tile + swizzled(row, chunk), at < 0 ? xs : xs + at,
                      at < 0 ? 0 : kChunkBytes);
    }
#pragma unroll
    for (int j = 0; j < kCopiesB; ++j) {
      const int row = producer_copy_row(tid, j);
      const int64_t at = b_chunk(n0 + row, prob.N, prob.R, r0 + chunk * kPerChunk);
      ptx::cp_async16(b_tile + swizzled(row, chunk), at < 0 ? ws : ws + at,
                      at < 0 ? 0 : kChunkBytes);
    }
    ptx::cp_async_mbarrier_arrive_noinc(&full[slot]);  // when this tile's copies have landed
  }
  ptx::cp_async_commit();  // stay until the last copies have landed
  ptx::cp_async_wait<0>();
}

// How the stages reach shared memory: by cp.async (version 6), whose writes go through the
// generic proxy and need a proxy fence before the tensor cores read them, or by the TMA
// (version 7), which writes through the async proxy the tensor cores read with.
enum class StageWrites { generic_proxy, async_proxy };

// A slot's release by a math thread: an arrival on the block's empty barrier of the slot.
struct ReleaseInBlock {
  __device__ void operator()(uint64_t* bar) const { ptx::mbarrier_arrive(bar); }
};

// The math warpgroups' loop over one output tile's r-tiles, which the ring holds as its stages
// from `stage0` on (a block that multiplies several output tiles, version 7's, runs its ring on
// across them): each stage once its slot is full, releasing the slot of the stage before it
// (`release` of its empty barrier) once GroupMath::stage has seen that stage's wgmma complete.
// With `release_last` the tile's last slot is released too, once drained (the producer is
// already filling the ring for the next tile). Returns the stage after the tile's last.
template <class Tile, Precision P, StageWrites kWrites, class Problem,
          class Release = ReleaseInBlock>
__device__ int consume(const Problem& prob, GroupMath<P, Tile>& math, uint32_t base, uint64_t* full,
                       uint64_t* empty, int stage0 = 0, bool release_last = false,
                       Release release = {}) {
  constexpr int kPerRow = kRowBytes / (P == Precision::bf16 ? 2 : 4);
  const int tiles = prob.R / kPerRow;
  for (int kt = 0; kt < tiles; ++kt) {
    const int stage = stage0 + kt, slot = stage % kStages;
    mbarrier_wait(&full[slot], stage / kStages % 2);
    if constexpr (kWrites == StageWrites::generic_proxy) ptx::fence_proxy_async();
    const uint32_t a_tile = base + slot * Tile::kStageBytes;
    math.stage(a_tile, a_tile + Tile::kTileABytes);
    if (kt >= 1) release(&empty[(stage - 1) % kStages]);
  }
  math.drain();
  if (release_last) release(&empty[(stage0 + tiles - 1) % kStages]);
  return stage0 + tiles;
}

#endif  // CU3D_WGMMA_DEVICE

// The kernel on `Tile` (as version 5's), 384 threads: two warpgroups of math, one of copies.
// Grid: (N tiles, M tiles). Launch bounds (384, 1): one block per SM, 168 registers per thread
// at launch, redistributed by setmaxnreg.
template <class Problem, Precision P, class Tile>
__global__ void __launch_bounds__(kWsThreads, 1)
    conv3d_fwd_wgmma_ws(Problem prob, const void* x, const void* w) {
#if defined(CU3D_WGMMA_DEVICE)
  __shared__ RowCorner corners[Tile::kBM];
  __shared__ uint64_t full[kStages], empty[kStages];
  const int n_tile = blockIdx.x, n0 = n_tile * kBN, m0 = blockIdx.y * Tile::kBM;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      ptx::mbarrier_init(&full[s], kProducerThreads);
      ptx::mbarrier_init(&empty[s], kMathThreads);
    }
  }
  fill_corners<Tile>(prob, m0, corners);  // its barrier also publishes the mbarriers' init
  const uint32_t base = (ptx::shared_address(ptx::dynamic_shared_memory()) + kAtomBytes - 1) &
                        ~uint32_t(kAtomBytes - 1);
  if (threadIdx.x >= kMathThreads) {
    ptx::setmaxnreg_dec<kProducerRegisters>();
    produce<Tile, P>(prob, x, w, corners, n0, base, full, empty);
  } else {
    ptx::setmaxnreg_inc<kMathRegisters>();
    GroupMath<P, Tile> math;
    consume<Tile, P, StageWrites::generic_proxy>(prob, math, base, full, empty);
    igemm::epilogue(prob, math, m0, n0, n_tile, 0);
  }
#else
  __trap();  // not built for sm_90a: conv3d_fwd_wgmma_supports keeps the host from launching it
#endif
}

}  // namespace cu3d::cuda::pipelined::wgmma
