// A host emulation of one CUDA thread block, for running the real conv kernels of kernels/cuda
// on a machine without a GPU, thread by thread, and checking the parts of their correctness no
// CPU test reaches: the asynchronous copies, the tensor cores' reads of shared memory behind the
// threads' backs, and the barriers and mbarriers that order them.
//
// How: each CUDA thread is a fiber (ucontext) of one OS thread. A fiber runs until it blocks (at
// __syncthreads, a warp shuffle, an mbarrier wait that fails) or, in a random schedule, until it
// is preempted at an emulated instruction; the scheduler then runs the next. The PTX wrappers of
// kernels/cuda/ptx.cuh are replaced (ptx_emulated.h) by calls into the emulated instructions below,
// which model what the hardware leaves undefined as visibly wrong:
//   * cp.async writes poison into its 16 bytes of shared memory at issue and the data only when
//     the copying thread's cp.async.wait_group retires its group, or when the copy unit catches
//     up with a cp.async.mbarrier.arrive (at the end of a scheduler round, and in random
//     schedules at random);
//   * a wgmma reads its operands (decoded from the descriptors, 128-byte swizzle) when its group
//     completes at wgmma.wait_group, not at issue: a slot refilled too early reads poison;
//   * a bulk tensor copy (the TMA, cp.async.bulk.tensor in tiled or im2col mode, on the tensor
//     maps tensor_map.h specifies) writes poison over its box at issue, and its data, and its
//     bytes on the mbarrier's transaction count, only when the copy unit completes it (as for
//     cp.async.mbarrier.arrive); its writes are the async proxy's, so a wgmma may read them
//     once its thread has seen the mbarrier phase they completed;
//   * ordering is tracked with vector clocks (__syncthreads and mbarrier arrive release; the
//     barrier and a successful mbarrier try_wait acquire), so a hand-over that happens to work
//     in one schedule but is not ordered by the program is reported all the same.
// Each violation is a Fault, counted with its first messages in the Report.
//
// Shared memory: the ring of a kernel's dynamic shared memory lives in an emulated address
// space (shared_address() of dynamic_shared_memory() is BlockConfig::dynamic_base), so the
// kernel's own alignment arithmetic runs on real addresses. __shared__ variables are host
// statics (cuda_runtime.h), shared by the fibers of the one block that runs at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/tensor_map.h"

namespace cu3d::emu {

enum class Fault {
  copy_outside_dynamic_shared,  // cp.async dst outside the launch's dynamic shared memory
  copy_into_chunk_in_flight,    // cp.async into a chunk another copy still writes
  copy_over_unread_operand,     // cp.async over a chunk an uncompleted (or unordered) wgmma reads
  operand_not_landed,           // wgmma issued on a chunk that does not hold its tile
  operand_not_fenced,           // ... whose landing was not fenced (proxy) and ordered before
  operand_changed_in_flight,    // the chunk changed between the wgmma's issue and completion
  work_pending_at_exit,         // a thread ended with copies or wgmma in flight
  bad_instruction_use,          // a wgmma from the wrong warpgroup, a bad descriptor, ...
  shuffle_divergence,           // lanes of a warp at different shuffles (or warp-wide instructions)
  deadlock,                     // every live thread blocked, nothing can complete
  mbarrier_phase_skipped,       // a waiter saw a phase two or more beyond the one it waited for
  mbarrier_double_arrival,      // one thread arrived twice in one phase
  mbarrier_phase_unfinished,    // the block ended with a phase half arrived
  mbarrier_misuse,              // used before (or without ordering after) its init; bad count
  trap,                         // the kernel executed __trap()
  count
};
constexpr int kFaultKinds = int(Fault::count);
const char* describe(Fault fault);

// What a run found: faults by kind (with the first messages), and counts of the collective
// operations that ran, so a test can tell an epilogue from one that did nothing.
struct Report {
  std::array<long, kFaultKinds> faults{};
  std::vector<std::string> messages;
  long shuffles = 0, atomics = 0, mbarrier_polls = 0;
  long copies = 0, ldmatrix = 0, mma_sync = 0, wgmma = 0;  // per warp (ldmatrix, mma) or thread
  long shared_loads = 0;                                   // ld.shared (.u32, .v4.f32), per thread
  long bulk_copies = 0;  // cp.async.bulk.tensor (TMA) loads, a multicast once per block reached
  long clusters = 0;     // clusters of more than one block run (launch_cluster)
  long total_faults() const;
  long operator[](Fault f) const { return faults[int(f)]; }
  std::string summary() const;  // "" when clean
};

enum class Schedule {
  in_order,   // warps and lanes ascending
  reversed,   // descending
  random,     // shuffled every round, with preemption at emulated instructions
  concurrent  // launches only: blocks resident together (global_sync_point), threads random
};

struct Index3 {
  unsigned x = 1, y = 1, z = 1;
};

struct BlockConfig {
  // The threads emulated together: a block's (block_dim.x * block_dim.y * block_dim.z when that
  // is set), or a cluster's, `cluster` blocks of threads / cluster each.
  int threads = 256;
  int cluster = 1;  // blocks of the cluster (along x: blockIdx.x = block_x + rank)
  Schedule schedule = Schedule::in_order;
  unsigned seed = 1;             // random schedules
  int preempt_percent = 15;      // random schedules: the chance of a switch at an instruction
  uint32_t dynamic_base = 4096;  // emulated shared address of the dynamic shared memory
  uint32_t dynamic_bytes = 0;    // its size (the launch's third argument)
  unsigned block_x = 0, block_y = 0, block_z = 0;
  Index3 block_dim{0, 1, 1};  // x 0: (threads, 1, 1)
  Index3 grid_dim{1, 1, 1};
};

// Starts a fresh report; runs accumulate into it until the next reset.
void reset_report();
const Report& report();

// Runs `body` (the kernel's body for one block) as config.threads fibers.
void run_block(const std::function<void()>& body, const BlockConfig& config);

// A kernel launch rewritten for the host (launch_to_call.cpp turns kernel<<<g, b, s>>>(args)
// into launch([&] { kernel(args); }, g, b, s, stream)): every block of the grid, one after another,
// in the order and with the thread schedule of set_launch_schedule; or, with Schedule::concurrent,
// up to 4 blocks resident at once, each on an OS thread of its own, one running at a time and
// switched at random at the global synchronization points (atomics, fences, sleeps): what a
// kernel whose blocks wait for each other (layer_norm.cu's per-sample kernels) needs to show a
// missing wait.
struct Dim3 {
  Dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  unsigned x, y, z;
};
// The stream is ignored: an emulated launch has completed when it returns.
void launch(const std::function<void()>& body, Dim3 grid, Dim3 block, size_t shared_bytes,
            const void* stream = nullptr);
// A launch in clusters of `cluster` blocks along x (cudaLaunchKernelEx with a cluster
// dimension): each cluster's blocks run together as one emulated block (BlockConfig::cluster),
// each with its own shared window and __syncthreads, reaching each other's mbarriers and shared
// memory only through the cluster instructions below; the clusters one after another (a
// concurrent schedule runs them in order, their threads at random).
void launch_cluster(const std::function<void()>& body, Dim3 grid, Dim3 block, size_t shared_bytes,
                    int cluster);
// A cooperative launch (cudaLaunchKernelEx with cudaLaunchAttributeCooperative, which
// kernels/cuda/co_resident_launch.cuh reaches): the grid's blocks all resident at once, each on
// an OS thread of its own, switched at random at the global synchronization points in every
// launch schedule (its blocks wait for each other, so they cannot run one after another). A grid
// of more than resident_blocks() is a fault, as the driver refuses a grid the device cannot hold.
void launch_cooperative(const std::function<void()>& body, Dim3 grid, Dim3 block,
                        size_t shared_bytes);
int resident_blocks();  // how many blocks a concurrent or cooperative launch holds at once
void set_launch_schedule(Schedule schedule, unsigned seed = 1);
long launches();  // since the last reset_report
// The SMs the emulated device reports (multiprocessor_count; 132, an H100's, by default): fewer
// make the grid-stride loops of the memory-bound kernels go round.
void set_multiprocessors(int count);
// The shared memory of the emulated device (an H100's by default: 227 KB a block may opt in to,
// 228 KB an SM): smaller makes the kernels that size their blocks by it split their work further.
void set_shared_memory(int per_block, int per_sm);
// Blocks of `threads` with `shared_bytes` of dynamic shared memory that the emulated device holds
// at once: per SM as its threads (2048) and shared memory (1 KB of it reserved per block) allow,
// times the SMs, and no more than resident_blocks().
int co_resident_blocks(int threads, int shared_bytes);

// ---- the CUDA built-ins (cuda_runtime.h)
// ----------------------------------------------------------
Index3 thread_index();
Index3 block_index();
Index3 block_dim();
Index3 grid_dim();
void syncthreads();
void syncwarp();  // __syncwarp(): a warp-wide instruction that orders its lanes' memory operations
uint64_t shuffle_xor(unsigned members, uint64_t value, int lane_mask, const void* site);
void note_atomic();
// An atomic, __threadfence or (poll) __nanosleep of a block in a concurrent launch: another
// resident block may run from here (set_launch_schedule(Schedule::concurrent)). A no-op
// otherwise.
void global_sync_point(bool poll);
[[noreturn]] void trap(const char* file, int line);

// ---- the PTX instructions (ptx_emulated.h)
// --------------------------------------------------------------
uint32_t to_tf32(float x);
unsigned char* dynamic_shared_memory();
uint32_t shared_address(const void* p);
void cp_async16(uint32_t dst, const void* src, int bytes);
void cp_async_commit();
void cp_async_wait(int pending);
void fence_proxy_async();
void wgmma_m64n128(float* d, uint64_t a, uint64_t b, bool bf16);
void wgmma_commit();
void wgmma_wait(int pending);
void mbarrier_init(uint64_t* bar, int count);
void cp_async_mbarrier_arrive_noinc(uint64_t* bar);
void mbarrier_arrive(uint64_t* bar);
void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes);
bool mbarrier_try_wait(uint64_t* bar, uint32_t parity);
void fence_mbarrier_init();
void tma_load_tile_2d(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int col, int row);
void tma_load_im2col_5d(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int c, int w,
                        int h, int d, int n, uint16_t ow, uint16_t oh, uint16_t od);
// ---- clusters: the block's rank, the cluster barrier (barrier.cluster.arrive + wait), an
// arrival on block `rank`'s mbarrier at `bar`'s offset (mapa + mbarrier.arrive.shared::cluster),
// and a tiled or im2col load multicast to the blocks of `multicast` (a mask; empty: this block
// alone), each completing on its own mbarrier at `bar`'s offset. Mbarriers reached across the
// cluster live in the blocks' dynamic shared memory (dynamic_shared_memory()), whose pointers the
// emulator can map.
void tma_load_tile_2d_multicast(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int col,
                                int row, uint16_t multicast);
uint32_t cluster_ctarank();
void cluster_sync();
void mbarrier_arrive_cluster(uint64_t* bar, uint32_t rank);
void tma_load_im2col_5d_multicast(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int c,
                                  int w, int h, int d, int n, uint16_t ow, uint16_t oh, uint16_t od,
                                  uint16_t multicast);

// The specification behind an emulated tensor map (tensor_map.cpp of the emulation records
// them; the map's bytes hold the index).
struct TensorMapRecord {
  bool im2col = false;
  cuda::Im2colMapSpec im2col_spec;
  cuda::TiledMapSpec tiled_spec;
};
cuda::TensorMap record_tensor_map(const TensorMapRecord& record);
const TensorMapRecord* find_tensor_map(const cuda::TensorMap* map);
// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16 and mma.sync.aligned.m16n8k16 (bf16) /
// m16n8k8 (tf32) with fp32 accumulators: warp-wide, run once all 32 lanes have reached them.
void ldmatrix_x4(uint32_t address, uint32_t* r, bool trans);
void mma_sync(float* d, const uint32_t* a, const uint32_t* b, bool bf16);
// ld.shared.u32 and ld.shared.v4.f32: one thread's load of `bytes` (4 or 16, aligned to them)
// into `value`, its bytes checked as ldmatrix's are (landed, and the landing ordered before it).
void ld_shared(uint32_t address, int bytes, void* value);

}  // namespace cu3d::emu
