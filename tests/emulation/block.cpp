// The block emulator (block.h): the scheduler of fibers, and the emulated instructions.
#include "block.h"

#include <ucontext.h>

#include <algorithm>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

// AddressSanitizer must be told when the stack changes under it (each fiber has its own).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CU3D_EMULATION_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CU3D_EMULATION_ASAN 1
#endif
#if defined(CU3D_EMULATION_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace cu3d::emu {
namespace {

constexpr int kMaxThreads = 1024;
#if defined(CU3D_EMULATION_ASAN)
constexpr size_t kStackBytes = 512 * 1024;  // frames grow by their red zones
#else
constexpr size_t kStackBytes = 128 * 1024;
#endif
// A block's shared addresses run from 0 to 256 KB, as a CTA's own window does on the GPU; the
// blocks of a cluster each have theirs, rank r's at physical offset r * kRankSpace of the
// emulator's shared space (physical()).
constexpr uint32_t kRankSpace = 256 * 1024;
constexpr int kMaxCluster = 2;
constexpr uint32_t kSharedSpace = kMaxCluster * kRankSpace;
constexpr int kChunks = kSharedSpace / 16;
constexpr uint32_t kPoison = 0x7fc0dead;  // a NaN: poison that reaches an output shows
constexpr int kMessagesPerFault = 3;
constexpr int kWarpgroupThreads = 128;

// Chunk tags: the tile of the copy that last landed in a 16-byte chunk, or one of these. A copy's
// tile is the number of groups its thread had closed before it, by cp.async.commit_group or by
// cp.async.mbarrier.arrive: one per tile in versions 5 and 6.
constexpr int kStale = -2;     // not written in this block
constexpr int kInFlight = -1;  // a copy into it has not landed

struct Copy {
  int group;  // the commit group (for cp.async.wait_group)
  int tile;
  long sequence;  // the thread's copies in issue order
  uint32_t dst;
  unsigned char data[16];
};
// A cp.async.mbarrier.arrive not yet made: it arrives once the copies before it have landed.
struct AsyncArrival {
  uint64_t* bar;
  long covers;             // copies with a smaller sequence number
  std::vector<int> clock;  // the issuing thread's clock then: what the arrival releases
};
// A bulk tensor copy (the TMA) not yet completed: the 16-byte chunks of its box with their data
// (read at issue), and the mbarrier its bytes complete on.
struct BulkCopy {
  uint64_t* bar;
  int tile;
  uint32_t bytes;
  std::vector<std::pair<uint32_t, std::array<unsigned char, 16>>> chunks;  // (address, data)
};
struct Mma {
  int group;
  float* d;
  uint64_t a, b;
  bool bf16;
};

enum class State {
  runnable,
  at_barrier,          // __syncthreads: released when the thread's block (rank) is all there
  at_cluster_barrier,  // barrier.cluster: released when the whole cluster is there
  at_warp_op,
  warp_op_done,
  released,
  polling,
  preempted
};

// The warp-wide instructions: a lane waits at one until all 32 lanes of its warp are at the same
// one, which then runs for the whole warp.
enum class WarpOp { shuffle, ldmatrix, ldmatrix_trans, mma_bf16, mma_tf32, syncwarp };

struct Thread {
  ucontext_t context;
  std::vector<char> stack;
  bool done = false, exit_checked = false;
  bool failed_poll_last = false;  // the last emulated instruction was a failed mbarrier poll
  bool spinning = false;          // resumed into another failed poll: no progress
  State state = State::runnable;
  int copy_commits = 0, mma_commits = 0, async_arrivals = 0;
  int tx_arrivals = 0;       // mbarrier.arrive.expect_tx: one per tile the TMA loads
  int cluster_barriers = 0;  // barrier.cluster passed
  long copies_issued = 0;
  std::vector<Copy> copies;
  std::vector<AsyncArrival> arrivals;
  std::vector<Mma> mmas;
  std::vector<int> landed_unfenced;  // chunks this thread's waits landed, not yet fenced
  const void* polled_barrier = nullptr;
  uint32_t polled_parity = 0;
  WarpOp warp_op = WarpOp::shuffle;
  uint64_t shuffle_value = 0;
  int shuffle_mask = 0;
  unsigned shuffle_members = 0;
  uint32_t fragment[6] =
      {};  // ldmatrix: [0] the row address in, [0..3] out; mma: A [0..3], B [4..5]
  float accumulators[4] = {};  // mma: C in, D out
  const void* warp_op_site = nullptr;
  long warp_ops_done = 0;
  std::vector<int> clock;           // clock[u]: the latest release of thread u ordered before now
  std::vector<int> fence_view;      // the clock at this thread's last fence.proxy.async
  void* sanitizer_stack = nullptr;  // AddressSanitizer's fake stack while switched out
};

struct Mbarrier {
  int expected = 0, count = 0;
  long tx = 0;         // bytes the current phase still waits for (expect_tx less complete_tx)
  long completed = 0;  // phases completed
  int init_thread = -1, init_clock = 0;
  std::vector<int> arrivals_clock, completed_clock;
  std::vector<long> last_observed, arrived_in_phase;  // per thread
};

struct Chunk {
  int tag = kStale;
  bool fenced = false;
  int fence_thread = 0, fence_clock = 0;
  int open_reads[3] = {};                  // issued wgmma reads per warpgroup, not completed
  int land_thread = 0, land_clock = 0;     // who saw the last copy land, and when
  const void* async_bar = nullptr;         // a bulk copy's landing: the mbarrier and the phase it
  long async_phase = 0;                    // completes, which a reader must have seen complete
  std::vector<std::pair<int, int>> reads;  // completed reads since the last copy: (thread, clock)
};

struct Block {
  BlockConfig config;
  std::vector<Thread> threads = std::vector<Thread>(kMaxThreads);
  int current = 0;
  ucontext_t scheduler;
  std::function<void()> body;
  std::mt19937 rng;
  unsigned char shared[kSharedSpace];
  std::vector<Chunk> chunks = std::vector<Chunk>(kChunks);
  bool shared_space_used = true;  // by the last block: reset before the next
  std::map<const void*, Mbarrier> mbarriers;
  std::vector<BulkCopy> bulk_copies;  // issued, not completed
  // Per block of the cluster: the most cluster barriers its peer had passed when it last
  // multicast into it or arrived on its mbarriers (-1: never). Its threads must pass one more
  // before they exit: on the GPU its shared memory may go to another block once they have.
  std::array<int, kMaxCluster> reached_after = {};
  std::vector<unsigned char> dynamic_shared;  // what dynamic_shared_memory() returns
  Schedule launch_schedule = Schedule::in_order;
  unsigned launch_seed = 1;
  long launches = 0;
  void* scheduler_sanitizer_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
};

// The block that runs on this OS thread: the launching thread's, or a resident worker's in a
// concurrent launch (each its own, as each of its __shared__ variables: cuda_runtime.h). 256 KB
// of shared space and up to 128 MB of stacks: on the heap, for the life of the thread.
Block& block() {
  thread_local Block* instance = new Block;
  return *instance;
}
Report the_report;

Thread& me() {
  return block().threads[block().current];
}

// The blocks of a cluster run as one emulated block of cluster * block threads: thread i is
// thread i % threads_per_rank() of the cluster's block (rank) i / threads_per_rank().
int threads_per_rank() {
  return block().config.threads / block().config.cluster;
}
int rank_of(int thread) {
  return thread / threads_per_rank();
}
// Where rank `rank`'s shared address `address` lives in the emulator's shared space.
uint32_t physical(uint32_t address, int rank) {
  return address % kRankSpace + uint32_t(rank) * kRankSpace;
}
// The bytes of Block::dynamic_shared per block of the cluster.
size_t dynamic_stride(const BlockConfig& c) {
  return (size_t(c.dynamic_bytes) + 16 + 15) / 16 * 16;
}
// Whether [address, address + bytes) of a block's shared window lies in its dynamic shared
// memory.
bool in_dynamic_shared(uint32_t address, uint32_t bytes) {
  const BlockConfig& c = block().config;
  return address >= c.dynamic_base && address + bytes <= c.dynamic_base + c.dynamic_bytes;
}

// The two stack switches, with AddressSanitizer's bookkeeping around swapcontext. A thread that
// will never run again (ended, or trapped) leaves with `exiting`, which frees its fake stack.
void switch_to_thread(Thread& t) {
  Block& b = block();
#if defined(CU3D_EMULATION_ASAN)
  __sanitizer_start_switch_fiber(&b.scheduler_sanitizer_stack, t.stack.data(), t.stack.size());
  swapcontext(&b.scheduler, &t.context);
  __sanitizer_finish_switch_fiber(b.scheduler_sanitizer_stack, nullptr, nullptr);
#else
  swapcontext(&b.scheduler, &t.context);
#endif
}
void switch_to_scheduler(Thread& t, bool exiting) {
  Block& b = block();
#if defined(CU3D_EMULATION_ASAN)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &t.sanitizer_stack, b.scheduler_stack_bottom,
                                 b.scheduler_stack_size);
  swapcontext(&t.context, &b.scheduler);
  __sanitizer_finish_switch_fiber(t.sanitizer_stack, nullptr, nullptr);
#else
  (void)exiting;
  swapcontext(&t.context, &b.scheduler);
#endif
}

// A fiber's whole life: the block's body, then back to the scheduler for good.
void thread_main() {
#if defined(CU3D_EMULATION_ASAN)
  Block& b = block();
  __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_stack_bottom, &b.scheduler_stack_size);
#endif
  block().body();
  Thread& self = me();
  self.done = true;
  switch_to_scheduler(self, true);
}

void fault(Fault kind, const char* format, ...) {
  long& n = the_report.faults[int(kind)];
  if (n++ >= kMessagesPerFault) return;
  char text[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  the_report.messages.push_back(std::string(describe(kind)) + ": " + text);
}

void join(std::vector<int>& into, const std::vector<int>& other) {
  for (int i = 0; i < block().config.threads; ++i)
    into[i] = std::max(into[i], other[i]);
}

// Back to the scheduler in `state`; returns when the scheduler resumes this thread.
void suspend(State state) {
  Thread& t = me();
  t.state = state;
  switch_to_scheduler(t, false);
  me().state = State::runnable;
}

// Every emulated instruction starts here: in a random schedule the thread may lose the core.
void instruction() {
  Block& b = block();
  me().failed_poll_last = false;
  if (b.config.schedule == Schedule::random && int(b.rng() % 100) < b.config.preempt_percent)
    suspend(State::preempted);
}

// The byte address wgmma reads for byte `byte` of row `row` of the K-major operand at
// descriptor `desc` with the 128-byte swizzle: rows 128 bytes apart in 8-row atoms `stride`
// bytes apart, 16-byte chunk bits [4:6] XORed with address bits [7:9].
uint32_t operand_address(uint64_t desc, int row, int byte) {
  const uint32_t start = uint32_t(desc & 0x3FFF) << 4, stride = uint32_t((desc >> 32) & 0x3FFF)
                                                                << 4;
  const uint32_t linear = start + (row / 8) * stride + (row % 8) * 128 + byte;
  return linear ^ (((linear >> 7) & 7) << 4);
}
bool swizzle128_descriptor(uint64_t desc) {
  return (desc >> 62) == 1 && ((desc >> 49) & 7) == 0;  // 128-byte swizzle, base offset 0
}

// The chunks a thread's share of one m64n128 instruction reads: the two A rows of its
// accumulators and the 32 B rows (columns of D) of its accumulators, 32 bytes of each.
// (The physical chunks: the descriptors hold addresses of the issuing thread's block.)
template <class F>
void for_operand_chunks(const Mma& op, int thread, F f) {
  const int warp = thread % kWarpgroupThreads / 32, lane = thread % 32, rank = rank_of(thread);
  for (int half = 0; half < 2; ++half)
    for (int byte = 0; byte < 32; byte += 16)
      f(physical(operand_address(op.a, 16 * warp + lane / 4 + 8 * half, byte), rank) / 16);
  for (int tile = 0; tile < 16; ++tile)
    for (int e = 0; e < 2; ++e)
      for (int byte = 0; byte < 32; byte += 16)
        f(physical(operand_address(op.b, 8 * tile + 2 * (lane % 4) + e, byte), rank) / 16);
}

double operand_element(uint64_t desc, int row, int k, bool bf16, int rank) {
  const unsigned char* shared = block().shared;
  if (bf16) {
    uint16_t h;
    std::memcpy(&h, shared + physical(operand_address(desc, row, 2 * k), rank), 2);
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  float f;
  std::memcpy(&f, shared + physical(operand_address(desc, row, 4 * k), rank), 4);
  return f;
}

// The instruction's math for the thread's 64 accumulators (wgmma's D layout: accumulator i of
// lane l of warp w is row 16 w + l / 4 + 8 ((i / 2) % 2), column 8 (i / 4) + 2 (l % 4) + i % 2).
// Sums in double: the emulation checks data movement, not the tensor cores' rounding.
void complete_mma(const Mma& op, int thread) {
  const int warp = thread % kWarpgroupThreads / 32, lane = thread % 32, depth = op.bf16 ? 16 : 8;
  const int rank = rank_of(thread);
  double a[2][16], b[128][16];
  for (int half = 0; half < 2; ++half)
    for (int k = 0; k < depth; ++k)
      a[half][k] = operand_element(op.a, 16 * warp + lane / 4 + 8 * half, k, op.bf16, rank);
  for (int tile = 0; tile < 16; ++tile)
    for (int e = 0; e < 2; ++e) {
      const int col = 8 * tile + 2 * (lane % 4) + e;
      for (int k = 0; k < depth; ++k)
        b[col][k] = operand_element(op.b, col, k, op.bf16, rank);
    }
  for (int i = 0; i < 64; ++i) {
    const int half = (i / 2) % 2, col = 8 * (i / 4) + 2 * (lane % 4) + i % 2;
    double sum = 0;
    for (int k = 0; k < depth; ++k)
      sum += a[half][k] * b[col][k];
    op.d[i] = float(double(op.d[i]) + sum);
  }
}

Mbarrier* find_mbarrier(const void* bar, const char* what) {
  Block& b = block();
  auto it = b.mbarriers.find(bar);
  if (it == b.mbarriers.end()) {
    fault(Fault::mbarrier_misuse, "%s by thread %d on an mbarrier never initialized", what,
          b.current);
    return nullptr;
  }
  Mbarrier& m = it->second;
  if (me().clock[m.init_thread] < m.init_clock)
    fault(Fault::mbarrier_misuse, "%s by thread %d: the init by thread %d is not ordered before it",
          what, b.current, m.init_thread);
  return &m;
}

// A waiter saw the phase of `parity` complete: it must be the next phase of that parity after
// the last one this thread saw (a later one means it fell a whole phase behind).
void observe_phase(Mbarrier& m, const void* bar, uint32_t parity) {
  Block& b = block();
  const long observed = m.completed - 1, last = m.last_observed[b.current];
  const long next = last + 1;  // phases are numbered from 0; -1 is the one "before" the first
  const long expected = ((next % 2) + 2) % 2 == long(parity & 1) ? next : next + 1;
  if (observed != expected)
    fault(Fault::mbarrier_phase_skipped,
          "thread %d, mbarrier %p parity %u: saw phase %ld complete, the next of its parity is %ld",
          b.current, bar, parity, observed, expected);
  m.last_observed[b.current] = observed;
  if (observed >= 0) join(me().clock, m.completed_clock);  // acquire
}

void start_fibers() {
  Block& b = block();
  for (int i = 0; i < b.config.threads; ++i) {
    Thread& t = b.threads[i];
    t.stack.resize(kStackBytes);
    t.done = t.exit_checked = t.failed_poll_last = t.spinning = false;
    t.state = State::runnable;
    t.copy_commits = t.mma_commits = t.async_arrivals = t.tx_arrivals = t.cluster_barriers = 0;
    t.copies_issued = 0;
    t.arrivals.clear();
    t.copies.clear();
    t.mmas.clear();
    t.landed_unfenced.clear();
    t.warp_ops_done = 0;
    t.clock.assign(b.config.threads, 0);
    t.clock[i] = 1;
    t.fence_view.assign(b.config.threads, 0);
    getcontext(&t.context);
    t.context.uc_stack.ss_sp = t.stack.data();
    t.context.uc_stack.ss_size = t.stack.size();
    t.context.uc_link = nullptr;  // thread_main never returns
    makecontext(&t.context, thread_main, 0);
  }
}

bool can_run(const Thread& t) {
  return !t.done && t.state != State::at_barrier && t.state != State::at_cluster_barrier &&
         t.state != State::at_warp_op;
}

// A copy lands: its data and tile in the chunk, seen by `thread` at its clock `at`.
// The 16 bytes at physical shared address `physical` as the kernel's pointer view of its dynamic
// shared memory (dynamic_shared_memory()) sees them, where they lie in it: a kernel that copies
// by cp.async and then reads through the pointer (layer_norm.cu's resident kernels) reads what
// landed, or the poison of a copy still in flight.
void mirror_to_pointer_view(uint32_t physical, const unsigned char* bytes) {
  Block& b = block();
  const uint32_t rank = physical / kRankSpace, address = physical % kRankSpace;
  if (address < b.config.dynamic_base ||
      address + 16 > b.config.dynamic_base + b.config.dynamic_bytes)
    return;
  std::memcpy(
      b.dynamic_shared.data() + rank * dynamic_stride(b.config) + (address - b.config.dynamic_base),
      bytes, 16);
}

void land(const Copy& copy, int thread, int at) {
  Block& b = block();
  std::memcpy(b.shared + copy.dst, copy.data, 16);
  mirror_to_pointer_view(copy.dst, copy.data);
  Chunk& chunk = b.chunks[copy.dst / 16];
  chunk.tag = copy.tile;
  chunk.fenced = false;
  chunk.land_thread = thread;
  chunk.land_clock = at;
  chunk.async_bar = nullptr;
}

// Whether a chunk's landing is fenced for the async proxy before thread t's wgmma: fenced by the
// thread that saw it land, that fence ordered before t (version 5), or t's own fence made after
// the landing was ordered before t (version 6's consumers, after the full barrier).
bool fenced_for(const Chunk& chunk, const Thread& t) {
  return (chunk.fenced && t.clock[chunk.fence_thread] >= chunk.fence_clock) ||
         t.fence_view[chunk.land_thread] >= chunk.land_clock;
}

// The phase completes once its arrivals are made and its transaction bytes have arrived.
void complete_phase_if_done(Mbarrier& m) {
  if (m.count != m.expected || m.tx != 0) return;
  m.completed_clock = m.arrivals_clock;
  std::fill(m.arrivals_clock.begin(), m.arrivals_clock.end(), 0);
  m.count = 0;
  m.completed++;
}

// Whether the current thread has seen the mbarrier phase that a bulk copy's landing in `chunk`
// completed: its own successful wait (stricter than PTX, which would also accept an ordering
// through other threads; the kernels have every reader wait itself).
bool saw_bulk_landing(const Chunk& chunk) {
  Block& b = block();
  auto it = b.mbarriers.find(chunk.async_bar);
  return it != b.mbarriers.end() && it->second.last_observed[b.current] >= chunk.async_phase;
}

// One arrival on `bar` by `thread`, releasing `clock`.
void arrive_on(uint64_t* bar, int thread, const std::vector<int>& clock) {
  Block& b = block();
  auto it = b.mbarriers.find(bar);
  if (it == b.mbarriers.end()) return;
  Mbarrier& m = it->second;
  if (m.arrived_in_phase[thread] == m.completed)
    fault(Fault::mbarrier_double_arrival, "thread %d on mbarrier %p in phase %ld", thread,
          static_cast<void*>(bar), m.completed);
  m.arrived_in_phase[thread] = m.completed;
  join(m.arrivals_clock, clock);
  if (m.count == m.expected) {
    fault(Fault::mbarrier_misuse, "thread %d on mbarrier %p: an arrival past the %d of phase %ld",
          thread, static_cast<void*>(bar), m.expected, m.completed);
    return;
  }
  ++m.count;
  complete_phase_if_done(m);
}

// The copy unit completes bulk copy `i`: its chunks land, tagged with its tile and marked as the
// async proxy's writes, ordered by the phase its bytes complete; then the bytes complete on the
// mbarrier.
void complete_bulk_copy(size_t i) {
  Block& b = block();
  const BulkCopy copy = std::move(b.bulk_copies[i]);
  b.bulk_copies.erase(b.bulk_copies.begin() + long(i));
  auto it = b.mbarriers.find(copy.bar);
  if (it == b.mbarriers.end()) return;
  Mbarrier& m = it->second;
  for (const auto& [address, data] : copy.chunks) {
    std::memcpy(b.shared + address, data.data(), 16);
    mirror_to_pointer_view(address, data.data());
    Chunk& chunk = b.chunks[address / 16];
    chunk.tag = copy.tile;
    chunk.fenced = false;
    chunk.async_bar = copy.bar;
    chunk.async_phase = m.completed;
  }
  m.tx -= copy.bytes;
  complete_phase_if_done(m);
}

// The copy unit catches up with some bulk copies (all, or in random schedules a random choice);
// returns whether it completed any.
bool complete_bulk_copies(bool all) {
  Block& b = block();
  bool any = false;
  for (size_t i = 0; i < b.bulk_copies.size();) {
    if (all || b.rng() % 2) {
      complete_bulk_copy(i);
      any = true;
    } else {
      ++i;
    }
  }
  return any;
}

// The copy unit catches up with thread `u`: the copies its cp.async.mbarrier.arrive calls cover
// land (seen at the arrival's clock), then the arrivals are made, in order. Returns whether any
// was pending.
bool complete_arrivals(int u) {
  Thread& t = block().threads[u];
  if (t.arrivals.empty()) return false;
  for (const AsyncArrival& arrival : t.arrivals) {
    std::vector<Copy> still;
    for (const Copy& copy : t.copies) {
      if (copy.sequence < arrival.covers)
        land(copy, u, arrival.clock[u]);
      else
        still.push_back(copy);
    }
    t.copies.swap(still);
    arrive_on(arrival.bar, u, arrival.clock);
  }
  t.arrivals.clear();
  return true;
}

// A generic read of `bytes` at shared address `address` by thread `reader` (ldmatrix, ld.shared):
// the chunks must hold landed data whose landing is ordered before the read; the read is
// recorded, so a copy over it must be ordered after it.
void check_generic_read(int reader, uint32_t address, int bytes) {
  Block& b = block();
  const Thread& t = b.threads[reader];
  if (address + bytes > kRankSpace) {
    fault(Fault::bad_instruction_use, "shared read by thread %d at shared byte %u", reader,
          address);
    return;
  }
  address = physical(address, rank_of(reader));
  for (uint32_t c = address / 16; c <= (address + bytes - 1) / 16; ++c) {
    Chunk& chunk = b.chunks[c];
    if (chunk.tag < 0)
      fault(Fault::operand_not_landed, "shared read by thread %d: shared byte %u %s", reader,
            16 * c, chunk.tag == kInFlight ? "in flight" : "never written");
    else if (t.clock[chunk.land_thread] < chunk.land_clock)
      fault(Fault::operand_not_landed,
            "shared read by thread %d: shared byte %u landed for thread %d, not ordered before",
            reader, 16 * c, chunk.land_thread);
    chunk.reads.push_back({reader, t.clock[reader]});
  }
}

// ldmatrix.x4 (.trans): lanes 8j .. 8j + 7 address the 8 rows (16 bytes each) of matrix j; lane
// l receives, in register j, the 32-bit word l % 4 of row l / 4 of matrix j, or with .trans the
// elements (row 2 (l % 4), column l / 4) and (row 2 (l % 4) + 1, column l / 4).
void run_ldmatrix(Thread* lanes, int warp, bool trans) {
  for (int l = 0; l < 32; ++l)
    check_generic_read(32 * warp + l, lanes[l].fragment[0], 16);
  const unsigned char* shared = block().shared;
  auto row = [&](int matrix, int r) {
    return shared + physical(lanes[8 * matrix + r].fragment[0], rank_of(32 * warp));
  };
  uint32_t out[32][4];
  for (int l = 0; l < 32; ++l)
    for (int j = 0; j < 4; ++j) {
      if (!trans) {
        std::memcpy(&out[l][j], row(j, l / 4) + 4 * (l % 4), 4);
        continue;
      }
      uint16_t lo, hi;
      std::memcpy(&lo, row(j, 2 * (l % 4)) + 2 * (l / 4), 2);
      std::memcpy(&hi, row(j, 2 * (l % 4) + 1) + 2 * (l / 4), 2);
      out[l][j] = uint32_t(lo) | uint32_t(hi) << 16;
    }
  for (int l = 0; l < 32; ++l)
    std::memcpy(lanes[l].fragment, out[l], sizeof out[l]);
}

double bf16_half(uint32_t word, int half) {
  const uint32_t bits = (half ? word >> 16 : word & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
double tf32_word(uint32_t word) {
  const uint32_t bits = word & 0xffffe000u;  // the tensor cores read the top 19 bits
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// mma.sync.m16n8k16 (bf16) / m16n8k8 (tf32), row.col, fp32 accumulators (PTX ISA, "Matrix
// fragments for mma.m16n8k16 / m16n8k8"), with g = lane / 4 and t = lane % 4:
//   bf16 A: reg 0 = (g, 2t..2t+1), 1 = (g+8, 2t..), 2 = (g, 2t+8..), 3 = (g+8, 2t+8..)
//        B: reg 0 = (k 2t..2t+1, n g), 1 = (k 2t+8.., n g)
//   tf32 A: reg 0 = (g, t), 1 = (g+8, t), 2 = (g, t+4), 3 = (g+8, t+4); B: 0 = (t, g), 1 = (t+4, g)
//   C, D: 0, 1 = (g, 2t), (g, 2t+1); 2, 3 = (g+8, 2t), (g+8, 2t+1).
// Sums in double, rounded once: the emulation checks data movement, not the rounding.
void run_mma(Thread* lanes, bool bf16) {
  double a[16][16] = {}, b[16][8] = {};
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    const uint32_t* f = lanes[l].fragment;
    if (bf16) {
      for (int e = 0; e < 2; ++e) {
        a[g][2 * t + e] = bf16_half(f[0], e);
        a[g + 8][2 * t + e] = bf16_half(f[1], e);
        a[g][2 * t + 8 + e] = bf16_half(f[2], e);
        a[g + 8][2 * t + 8 + e] = bf16_half(f[3], e);
        b[2 * t + e][g] = bf16_half(f[4], e);
        b[2 * t + 8 + e][g] = bf16_half(f[5], e);
      }
    } else {
      a[g][t] = tf32_word(f[0]), a[g + 8][t] = tf32_word(f[1]);
      a[g][t + 4] = tf32_word(f[2]), a[g + 8][t + 4] = tf32_word(f[3]);
      b[t][g] = tf32_word(f[4]), b[t + 4][g] = tf32_word(f[5]);
    }
  }
  const int depth = bf16 ? 16 : 8;
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 4; ++i) {
      const int row = g + 8 * (i / 2), col = 2 * t + i % 2;
      double sum = 0;
      for (int k = 0; k < depth; ++k)
        sum += a[row][k] * b[k][col];
      lanes[l].accumulators[i] = float(double(lanes[l].accumulators[i]) + sum);
    }
  }
}

// The threads [first, first + count) at a barrier, released together: each acquires what all of
// them released.
void release_together(int first, int count) {
  Block& b = block();
  std::vector<int> merged(b.config.threads, 0);
  for (int i = first; i < first + count; ++i)
    join(merged, b.threads[i].clock);
  for (int i = first; i < first + count; ++i) {
    b.threads[i].clock = merged;
    b.threads[i].clock[i]++;
    b.threads[i].state = State::released;
  }
}

// The warp's lanes parked at a warp-wide instruction run it once all its live lanes are there.
// Returns whether it ran (or was abandoned as divergent).
bool resolve_warp_op(int warp) {
  Block& b = block();
  Thread* lanes = &b.threads[32 * warp];
  int waiting = 0, live = 0, elsewhere_blocked = 0;
  for (int l = 0; l < 32; ++l) {
    if (lanes[l].done) continue;
    ++live;
    waiting += lanes[l].state == State::at_warp_op;
    elsewhere_blocked +=
        lanes[l].state == State::at_barrier || lanes[l].state == State::at_cluster_barrier;
  }
  if (waiting == 0 || (waiting < live && waiting + elsewhere_blocked < live)) return false;
  const Thread& first = lanes[0];
  const bool shuffle = first.warp_op == WarpOp::shuffle;
  bool same = waiting == 32;
  for (int l = 0; same && l < 32; ++l)
    same = lanes[l].warp_op == first.warp_op && lanes[l].warp_op_site == first.warp_op_site &&
           lanes[l].warp_ops_done == first.warp_ops_done &&
           (!shuffle || (lanes[l].shuffle_mask == first.shuffle_mask &&
                         lanes[l].shuffle_members == 0xffffffffu && lanes[l].shuffle_mask >= 0 &&
                         lanes[l].shuffle_mask < 32));
  if (!same) {
    fault(Fault::shuffle_divergence, "warp %d: %d of %d live lanes at a warp-wide instruction",
          warp, waiting, live);
    for (int l = 0; l < 32; ++l)
      if (lanes[l].state == State::at_warp_op) lanes[l].state = State::warp_op_done;
    return true;
  }
  switch (first.warp_op) {
    case WarpOp::shuffle: {
      uint64_t values[32];
      for (int l = 0; l < 32; ++l)
        values[l] = lanes[l].shuffle_value;
      for (int l = 0; l < 32; ++l)
        lanes[l].shuffle_value = values[l ^ first.shuffle_mask];
      ++the_report.shuffles;
      break;
    }
    case WarpOp::ldmatrix:
    case WarpOp::ldmatrix_trans:
      run_ldmatrix(lanes, warp, first.warp_op == WarpOp::ldmatrix_trans);
      ++the_report.ldmatrix;
      break;
    case WarpOp::mma_bf16:
    case WarpOp::mma_tf32:
      run_mma(lanes, first.warp_op == WarpOp::mma_bf16);
      ++the_report.mma_sync;
      break;
    case WarpOp::syncwarp:  // orders the lanes' memory operations: a barrier of the warp
      release_together(32 * warp, 32);
      for (int l = 0; l < 32; ++l)
        lanes[l].state = State::warp_op_done;  // as the other warp-wide instructions leave them
      break;
  }
  for (int l = 0; l < 32; ++l)
    lanes[l].state = State::warp_op_done;
  return true;
}

void report_deadlock() {
  Block& b = block();
  int at_barrier = 0, at_warp_op = 0, polling = 0, live = 0;
  std::map<std::pair<const void*, uint32_t>, std::vector<int>> waiters;
  for (int i = 0; i < b.config.threads; ++i) {
    const Thread& t = b.threads[i];
    if (t.done) continue;
    ++live;
    at_barrier += t.state == State::at_barrier || t.state == State::at_cluster_barrier;
    at_warp_op += t.state == State::at_warp_op;
    if (t.state == State::polling) {
      ++polling;
      waiters[{t.polled_barrier, t.polled_parity}].push_back(i);
    }
  }
  std::string who;
  for (const auto& [key, ids] : waiters) {
    const Mbarrier& m = b.mbarriers[key.first];
    char text[200];
    std::snprintf(text, sizeof text,
                  "; threads %d..%d wait on mbarrier %p parity %u (%ld phases done, %d of %d "
                  "arrived)",
                  ids.front(), ids.back(), key.first, key.second, m.completed, m.count, m.expected);
    who += text;
  }
  fault(Fault::deadlock,
        "%d live threads: %d at a barrier, %d at a warp-wide instruction, %d polling%s", live,
        at_barrier, at_warp_op, polling, who.c_str());
}

// __syncthreads releases a block (rank) once its live threads are all at it, barrier.cluster
// the cluster once all of its threads are; a thread that exited while others wait at either
// is a fault (the kernels here never do that).
struct Barriers {
  int live = 0;
  bool released = false, failed = false;
};
Barriers release_barriers() {
  Block& b = block();
  Barriers out;
  const int per_rank = threads_per_rank();
  int cluster_waiting = 0, cluster_done = 0;
  for (int r = 0; r < b.config.cluster; ++r) {
    int live = 0, at_barrier = 0, done = 0;
    for (int i = r * per_rank; i < (r + 1) * per_rank; ++i) {
      const Thread& t = b.threads[i];
      if (t.done) {
        ++done;
        continue;
      }
      ++live;
      at_barrier += t.state == State::at_barrier;
      cluster_waiting += t.state == State::at_cluster_barrier;
    }
    out.live += live;
    cluster_done += done;
    if (live == 0 || at_barrier != live) continue;
    if (done) {
      fault(Fault::bad_instruction_use, "%d threads exited while %d wait at __syncthreads", done,
            at_barrier);
      out.failed = true;
      return out;
    }
    release_together(r * per_rank, per_rank);
    out.released = true;
  }
  if (out.live > 0 && cluster_waiting == out.live) {
    if (cluster_done) {
      fault(Fault::bad_instruction_use, "%d threads exited while %d wait at barrier.cluster",
            cluster_done, cluster_waiting);
      out.failed = true;
      return out;
    }
    release_together(0, b.config.threads);
    for (int i = 0; i < b.config.threads; ++i)
      b.threads[i].cluster_barriers++;
    out.released = true;
  }
  return out;
}

void schedule() {
  Block& b = block();
  const int warps = (b.config.threads + 31) / 32;
  std::vector<int> warp_order(warps), lane_order(32);
  auto arrange = [&](std::vector<int>& order) {
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = b.config.schedule == Schedule::reversed ? int(order.size() - 1 - i) : int(i);
    if (b.config.schedule == Schedule::random) std::shuffle(order.begin(), order.end(), b.rng);
  };
  for (;;) {
    bool progress = false;
    arrange(warp_order);
    for (int w : warp_order) {
      for (;;) {
        arrange(lane_order);
        for (int l : lane_order) {
          b.current = 32 * w + l;
          Thread& t = b.threads[b.current];
          if (b.current >= b.config.threads || !can_run(t)) continue;
          t.spinning = false;
          switch_to_thread(t);
          if (!t.spinning) progress = true;
          if (t.done && !t.exit_checked) {
            t.exit_checked = true;
            const long covered = t.arrivals.empty() ? 0 : t.arrivals.back().covers;
            const bool uncovered =
                std::any_of(t.copies.begin(), t.copies.end(),
                            [&](const Copy& c) { return c.sequence >= covered; });
            if (uncovered || !t.mmas.empty())
              fault(Fault::work_pending_at_exit, "thread %d: %zu copies, %zu wgmma in flight",
                    b.current, t.copies.size(), t.mmas.size());
          }
        }
        if (!resolve_warp_op(w)) break;
        progress = true;  // the lanes at the instruction run on
      }
    }
    const Barriers barriers = release_barriers();
    if (barriers.failed) return;
    if (barriers.live == 0) return;
    if (barriers.released) continue;
    // The copy unit: in order and reversed schedules it catches up at the end of every round;
    // in random ones with each thread at random, but always before a round without progress
    // would be called a deadlock.
    bool copied = false;
    for (int i = 0; i < b.config.threads; ++i)
      if (b.config.schedule != Schedule::random || !progress || b.rng() % 2)
        copied |= complete_arrivals(i);
    copied |= complete_bulk_copies(b.config.schedule != Schedule::random || !progress);
    if (!progress && !copied) return report_deadlock();
  }
}

}  // namespace

const char* describe(Fault fault) {
  switch (fault) {
    case Fault::copy_outside_dynamic_shared:
      return "cp.async outside the dynamic shared memory, or misaligned";
    case Fault::copy_into_chunk_in_flight:
      return "cp.async into a chunk another copy has not finished writing";
    case Fault::copy_over_unread_operand:
      return "cp.async over a chunk a wgmma still reads (or whose read is not ordered before it)";
    case Fault::operand_not_landed:
      return "wgmma issued on a chunk that does not hold its tile";
    case Fault::operand_not_fenced:
      return "wgmma operand not fenced (fence.proxy.async) and ordered before the issue";
    case Fault::operand_changed_in_flight:
      return "wgmma operand changed before its group completed";
    case Fault::work_pending_at_exit:
      return "thread ended with copies or wgmma in flight";
    case Fault::bad_instruction_use:
      return "instruction misused";
    case Fault::shuffle_divergence:
      return "lanes of a warp at different shuffles";
    case Fault::deadlock:
      return "deadlock";
    case Fault::mbarrier_phase_skipped:
      return "mbarrier wait saw a phase two or more beyond its own";
    case Fault::mbarrier_double_arrival:
      return "mbarrier: a thread arrived twice in one phase";
    case Fault::mbarrier_phase_unfinished:
      return "mbarrier: a phase half arrived when the block ended";
    case Fault::mbarrier_misuse:
      return "mbarrier misused";
    case Fault::trap:
      return "__trap()";
    case Fault::count:
      break;
  }
  return "?";
}

long Report::total_faults() const {
  long n = 0;
  for (long f : faults)
    n += f;
  return n;
}

std::string Report::summary() const {
  std::string text;
  for (int k = 0; k < kFaultKinds; ++k)
    if (faults[k]) text += std::to_string(faults[k]) + " x " + describe(Fault(k)) + "\n";
  for (const std::string& m : messages)
    text += "  " + m + "\n";
  return text;
}

void reset_report() {
  the_report = Report();
  block().launches = 0;
}
const Report& report() {
  return the_report;
}

void run_block(const std::function<void()>& body, const BlockConfig& config) {
  Block& b = block();
  if (config.threads < 1 || config.threads > kMaxThreads || config.cluster < 1 ||
      config.cluster > kMaxCluster || config.threads % config.cluster != 0 ||
      config.dynamic_base + config.dynamic_bytes > kRankSpace) {
    fault(Fault::bad_instruction_use, "launch of %d threads (clusters of %d) with %u bytes at %u",
          config.threads, config.cluster, config.dynamic_bytes, config.dynamic_base);
    return;
  }
  b.config = config;
  if (b.config.block_dim.x == 0)
    b.config.block_dim = {unsigned(config.threads / config.cluster), 1, 1};
  b.body = body;
  // The dynamic shared memory the kernel sees through a pointer (extern __shared__), poisoned,
  // one per block of the cluster (where the kernels keep their mbarriers); the conv kernels'
  // ring lives in the emulated space instead (shared_address maps each block's base).
  b.dynamic_shared.assign(size_t(config.cluster) * dynamic_stride(config), 0);
  for (size_t i = 0; i + 4 <= b.dynamic_shared.size(); i += 4)
    std::memcpy(b.dynamic_shared.data() + i, &kPoison, 4);
  b.rng.seed(config.seed);
  if (b.shared_space_used) {
    for (uint32_t i = 0; i < kSharedSpace; i += 4)
      std::memcpy(b.shared + i, &kPoison, 4);
    for (Chunk& c : b.chunks)
      c = Chunk();
    b.shared_space_used = false;
  }
  b.mbarriers.clear();
  b.bulk_copies.clear();
  b.reached_after.fill(-1);
  start_fibers();
  schedule();
  for (int r = 0; r < b.config.cluster; ++r)
    for (int i = r * threads_per_rank(); i < (r + 1) * threads_per_rank(); ++i)
      if (b.reached_after[r] >= b.threads[i].cluster_barriers) {
        fault(Fault::bad_instruction_use,
              "thread %d of block %d exited without a cluster barrier after the last multicast "
              "into its block or arrival on it from another",
              i, r);
        break;
      }
  for (int i = 0; i < b.config.threads; ++i)
    complete_arrivals(i);
  if (!b.bulk_copies.empty())
    fault(Fault::work_pending_at_exit, "the block ended with %zu bulk copies in flight",
          b.bulk_copies.size());
  for (const auto& [bar, m] : b.mbarriers)
    if (m.count != 0)
      fault(Fault::mbarrier_phase_unfinished, "mbarrier %p: %d of %d arrivals in phase %ld", bar,
            m.count, m.expected, m.completed);
}

// ---- built-ins
// -----------------------------------------------------------------------------------

Index3 thread_index() {
  const Index3 d = block().config.block_dim;
  const unsigned i = unsigned(block().current % threads_per_rank());
  return {i % d.x, i / d.x % d.y, i / (d.x * d.y)};
}
Index3 block_index() {
  const BlockConfig& c = block().config;
  return {c.block_x + unsigned(rank_of(block().current)), c.block_y, c.block_z};
}
Index3 block_dim() {
  return block().config.block_dim;
}
Index3 grid_dim() {
  return block().config.grid_dim;
}

void set_launch_schedule(Schedule schedule, unsigned seed) {
  block().launch_schedule = schedule;
  block().launch_seed = seed;
}
long launches() {
  return block().launches;
}

namespace {

// ---- concurrent launches: blocks resident together, switched at global synchronization ---------
// kResidentBlocks worker OS threads (started once, for the process) each run one block at a
// time, as an SM does; a baton lets exactly one of them (or the launching thread) run at any
// moment, so the emulator's state needs no locks. The block holding it hands it on at every
// atomic, __threadfence and __nanosleep (global_sync_point) to a resident block or a worker that
// starts the next block, chosen at random (seeded): so a block can draw a ticket, be overtaken by
// blocks that start after it, and resume later, as on a GPU. Memory stays sequentially
// consistent: what this checks is the protocol (who waits for whom), not the fences.
constexpr int kResidentBlocks = 4;
constexpr long kPollsWithoutProgress = 20000;  // every resident block polling: a deadlock

struct Residency {
  std::mutex mutex;
  std::condition_variable turn;
  int holder = -1;  // the worker that runs; -1: the launching thread
  const std::function<void()>* body = nullptr;
  BlockConfig config;
  long next = 0, blocks = 0;  // the next block of the launch to start; how many it has
  bool resident[kResidentBlocks] = {};
  std::mt19937 rng;
  long polls_in_a_row = 0;
  bool started = false;
};
Residency& residency() {
  static Residency* r = new Residency;  // never destroyed: the workers wait on it until exit
  return *r;
}
thread_local int worker_index = -1;  // this OS thread's worker, -1: not one

// Under r.mutex: the next holder, at random among the resident blocks and (while blocks remain
// to start) one idle worker; the launching thread once the launch has finished.
int choose_holder(Residency& r) {
  std::vector<int> candidates;
  int idle = -1;
  for (int w = 0; w < kResidentBlocks; ++w) {
    if (r.resident[w])
      candidates.push_back(w);
    else if (idle < 0)
      idle = w;
  }
  if (r.next < r.blocks && idle >= 0) candidates.push_back(idle);
  if (candidates.empty()) return -1;
  return candidates[r.rng() % candidates.size()];
}

// Under `lock`: hands the baton on and waits until it comes back to worker `me`.
void hand_over(Residency& r, std::unique_lock<std::mutex>& lock, int me) {
  r.holder = choose_holder(r);
  r.turn.notify_all();
  r.turn.wait(lock, [&] { return r.holder == me; });
}

// The launch's `config` for block `index` (x fastest), the k-th block of the launch to run.
BlockConfig config_of_block(BlockConfig config, long index, long k, unsigned launch_seed) {
  const Index3 g = config.grid_dim;
  config.block_x = unsigned(index % g.x);
  config.block_y = unsigned(index / g.x % g.y);
  config.block_z = unsigned(index / (long(g.x) * g.y));
  config.seed = launch_seed + 977u * unsigned(k);
  return config;
}

void worker_main(int me) {
  worker_index = me;
  Residency& r = residency();
  std::unique_lock lock(r.mutex);
  for (;;) {
    r.turn.wait(lock, [&] { return r.holder == me; });
    if (!r.resident[me] && r.next < r.blocks) {
      const long k = r.next++;
      const BlockConfig config = config_of_block(r.config, k, k, r.config.seed);
      r.resident[me] = true;
      lock.unlock();
      run_block(*r.body, config);  // hands the baton on at its synchronization points
      lock.lock();
      r.resident[me] = false;
      r.polls_in_a_row = 0;
    }
    r.holder = choose_holder(r);
    r.turn.notify_all();
  }
}

void launch_concurrent(const std::function<void()>& body, const BlockConfig& config, long blocks,
                       unsigned seed) {
  Residency& r = residency();
  std::unique_lock lock(r.mutex);
  if (!r.started) {
    for (int w = 0; w < kResidentBlocks; ++w)
      std::thread(worker_main, w).detach();
    r.started = true;
  }
  r.body = &body;
  r.config = config;
  r.config.seed = seed;
  r.next = 0;
  r.blocks = blocks;
  r.rng.seed(seed);
  r.polls_in_a_row = 0;
  hand_over(r, lock, -1);  // back once every block has run
}

}  // namespace

void global_sync_point(bool poll) {
  if (worker_index < 0) return;  // not a concurrent launch: blocks run one after another
  Residency& r = residency();
  std::unique_lock lock(r.mutex);
  r.polls_in_a_row = poll ? r.polls_in_a_row + 1 : 0;
  if (r.polls_in_a_row > kPollsWithoutProgress) {
    r.polls_in_a_row = 0;
    lock.unlock();
    fault(Fault::deadlock, "thread %d of block (%u, %u, %u): every resident block polls",
          block().current, block().config.block_x, block().config.block_y, block().config.block_z);
    trap(__FILE__, __LINE__);
  }
  hand_over(r, lock, worker_index);
}

namespace {

// A launch's grid, blocks and dynamic shared memory, its threads run in `schedule`.
BlockConfig launch_config(Dim3 grid, Dim3 threads, size_t shared_bytes, Schedule schedule) {
  BlockConfig config;
  config.threads = int(threads.x * threads.y * threads.z);
  config.block_dim = {threads.x, threads.y, threads.z};
  config.grid_dim = {grid.x, grid.y, grid.z};
  config.dynamic_bytes = uint32_t(shared_bytes);
  config.schedule = schedule;
  return config;
}

}  // namespace

void launch(const std::function<void()>& body, Dim3 grid, Dim3 threads, size_t shared_bytes,
            const void*) {
  Block& b = block();
  ++b.launches;
  BlockConfig config = launch_config(grid, threads, shared_bytes, b.launch_schedule);
  const long blocks = long(grid.x) * grid.y * grid.z;
  if (b.launch_schedule == Schedule::concurrent) {
    config.schedule = Schedule::random;  // the threads of each block, too
    return launch_concurrent(body, config, blocks, b.launch_seed);
  }
  for (long k = 0; k < blocks; ++k) {
    const long i = b.launch_schedule == Schedule::reversed ? blocks - 1 - k : k;
    run_block(body, config_of_block(config, i, k, b.launch_seed));
  }
}
int resident_blocks() {
  return kResidentBlocks;
}

void launch_cooperative(const std::function<void()>& body, Dim3 grid, Dim3 threads,
                        size_t shared_bytes) {
  Block& b = block();
  ++b.launches;
  const long blocks = long(grid.x) * grid.y * grid.z;
  if (blocks > kResidentBlocks) {
    fault(Fault::bad_instruction_use, "a cooperative grid of %ld blocks, more than the %d resident",
          blocks, kResidentBlocks);
    return;
  }
  launch_concurrent(body, launch_config(grid, threads, shared_bytes, Schedule::random), blocks,
                    b.launch_seed);
}

void launch_cluster(const std::function<void()>& body, Dim3 grid, Dim3 threads, size_t shared_bytes,
                    int cluster) {
  Block& b = block();
  ++b.launches;
  if (cluster < 1 || grid.x % unsigned(cluster) != 0) {
    fault(Fault::bad_instruction_use, "a grid of %u blocks in clusters of %d", grid.x, cluster);
    return;
  }
  BlockConfig config;
  config.cluster = cluster;
  config.threads = int(threads.x * threads.y * threads.z) * cluster;
  config.block_dim = {threads.x, threads.y, threads.z};
  config.grid_dim = {grid.x, grid.y, grid.z};
  config.dynamic_bytes = uint32_t(shared_bytes);
  config.schedule =
      b.launch_schedule == Schedule::concurrent ? Schedule::random : b.launch_schedule;
  const long clusters = long(grid.x / unsigned(cluster)) * grid.y * grid.z;
  for (long k = 0; k < clusters; ++k) {
    const long i = b.launch_schedule == Schedule::reversed ? clusters - 1 - k : k;
    // Cluster i's first block: config_of_block on the grid of clusters, x scaled back.
    BlockConfig c = config;
    c.grid_dim.x = grid.x / unsigned(cluster);
    c = config_of_block(c, i, k, b.launch_seed);
    c.grid_dim.x = grid.x;
    c.block_x *= unsigned(cluster);
    the_report.clusters += cluster > 1;
    run_block(body, c);
  }
}

void syncthreads() {
  suspend(State::at_barrier);
}

// Parks the lane at a warp-wide instruction until the warp's lanes have all reached it.
void wait_for_warp(WarpOp op, const void* site) {
  Thread& t = me();
  t.warp_op = op;
  t.warp_op_site = site;
  t.warp_ops_done++;
  suspend(State::at_warp_op);
}

__attribute__((noinline)) void syncwarp() {
  instruction();
  wait_for_warp(WarpOp::syncwarp, __builtin_return_address(0));
}

uint64_t shuffle_xor(unsigned members, uint64_t value, int lane_mask, const void* site) {
  Thread& t = me();
  t.shuffle_value = value;
  t.shuffle_mask = lane_mask;
  t.shuffle_members = members;
  wait_for_warp(WarpOp::shuffle, site);
  return me().shuffle_value;
}

void note_atomic() {
  ++the_report.atomics;
}

void trap(const char* file, int line) {
  fault(Fault::trap, "thread %d at %s:%d", block().current, file, line);
  Thread& t = me();
  t.done = true;  // never resumed: the thread is gone, as a trapped kernel's is
  switch_to_scheduler(t, true);
  std::abort();  // unreachable
}

// ---- PTX
// -------------------------------------------------------------------------------------------

uint32_t to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;  // to nearest, ties away (cvt.rna)
  return u & 0xffffe000u;
}

unsigned char* dynamic_shared_memory() {
  Block& b = block();
  return b.dynamic_shared.data() + size_t(rank_of(b.current)) * dynamic_stride(b.config);
}

uint32_t shared_address(const void* p) {
  if (p != dynamic_shared_memory()) {
    fault(Fault::bad_instruction_use, "shared_address of an object the emulator does not map");
    return 0;
  }
  return block().config.dynamic_base;
}

// A copy by the current thread into the chunk at physical address `dst` starts: no other copy may
// still be writing it, and every read of what it holds must be complete and ordered before. Poisons
// it and marks it in flight.
Chunk& start_copy_into(uint32_t dst) {
  Block& b = block();
  const Thread& t = me();
  Chunk& chunk = b.chunks[dst / 16];
  if (chunk.tag == kInFlight)
    fault(Fault::copy_into_chunk_in_flight, "thread %d, shared byte %u", b.current, dst);
  for (int g = 0; g < 3; ++g)
    if (chunk.open_reads[g])
      fault(Fault::copy_over_unread_operand,
            "thread %d, shared byte %u: %d reads by warpgroup %d not completed", b.current, dst,
            chunk.open_reads[g], g);
  for (auto [reader, at] : chunk.reads)
    if (t.clock[reader] < at) {
      fault(Fault::copy_over_unread_operand,
            "thread %d, shared byte %u: the read completed by thread %d is not ordered before",
            b.current, dst, reader);
      break;
    }
  chunk.reads.clear();
  for (int i = 0; i < 16; i += 4)
    std::memcpy(b.shared + dst + i, &kPoison, 4);
  mirror_to_pointer_view(dst, b.shared + dst);
  chunk.tag = kInFlight;
  return chunk;
}

void cp_async16(uint32_t dst, const void* src, int bytes) {
  instruction();
  Block& b = block();
  Thread& t = me();
  if (dst % 16 || !in_dynamic_shared(dst, 16) || (bytes != 0 && bytes != 16)) {
    fault(Fault::copy_outside_dynamic_shared, "thread %d: %d bytes to %u", b.current, bytes, dst);
    return;
  }
  b.shared_space_used = true;
  dst = physical(dst, rank_of(b.current));
  start_copy_into(dst);
  Copy copy{t.copy_commits, t.copy_commits + t.async_arrivals, t.copies_issued++, dst, {}};
  ++the_report.copies;
  if (bytes)
    std::memcpy(copy.data, src, 16);  // the source is read at issue (a bad address faults here)
  else
    std::memset(copy.data, 0, 16);
  t.copies.push_back(copy);
}

void cp_async_commit() {
  me().copy_commits++;
}

void cp_async_wait(int pending) {
  instruction();
  Block& b = block();
  complete_arrivals(b.current);  // copies an arrival waits for land for it, at its clock
  Thread& t = me();
  std::vector<Copy> still;
  for (const Copy& copy : t.copies) {
    if (copy.group >= t.copy_commits - pending) {
      still.push_back(copy);
      continue;
    }
    land(copy, b.current, t.clock[b.current]);
    t.landed_unfenced.push_back(copy.dst / 16);
  }
  t.copies.swap(still);
}

void fence_proxy_async() {
  instruction();
  Block& b = block();
  Thread& t = me();
  for (int c : t.landed_unfenced) {
    Chunk& chunk = b.chunks[c];
    if (chunk.tag < 0) continue;
    chunk.fenced = true;
    chunk.fence_thread = b.current;
    chunk.fence_clock = t.clock[b.current];
  }
  t.landed_unfenced.clear();
  t.fence_view = t.clock;
}

void cp_async_mbarrier_arrive_noinc(uint64_t* bar) {
  instruction();
  Thread& t = me();
  if (!find_mbarrier(bar, "cp.async.mbarrier.arrive")) return;
  t.arrivals.push_back({bar, t.copies_issued, t.clock});
  t.clock[block().current]++;  // what follows is not part of the release
  t.async_arrivals++;
}

// The tile an instruction reads is the issuing warpgroup's commit group (one per stage), and
// the copies of that stage are each copying thread's commit group of the same number: true of
// versions 5 and 6, whose every thread commits one group of copies per tile, in order.
void wgmma_m64n128(float* d, uint64_t a, uint64_t b_desc, bool bf16) {
  instruction();
  Block& b = block();
  Thread& t = me();
  const int group = b.current % threads_per_rank() / kWarpgroupThreads;
  if (group > 2) fault(Fault::bad_instruction_use, "wgmma from warpgroup %d", group);
  if (!swizzle128_descriptor(a) || !swizzle128_descriptor(b_desc))
    fault(Fault::bad_instruction_use, "thread %d: a descriptor without the 128-byte swizzle",
          b.current);
  const Mma op{t.mma_commits, d, a, b_desc, bf16};
  ++the_report.wgmma;
  for_operand_chunks(op, b.current, [&](int c) {
    if (c >= kChunks) return fault(Fault::bad_instruction_use, "operand outside shared memory");
    Chunk& chunk = b.chunks[c];
    if (chunk.tag != op.group)
      fault(Fault::operand_not_landed, "thread %d, tile %d: chunk %d holds %d", b.current, op.group,
            c, chunk.tag);
    else if (chunk.async_bar ? !saw_bulk_landing(chunk) : !fenced_for(chunk, t))
      fault(Fault::operand_not_fenced, "thread %d, tile %d: chunk %d", b.current, op.group, c);
    chunk.open_reads[group]++;
  });
  t.mmas.push_back(op);
}

void wgmma_commit() {
  me().mma_commits++;
}

void wgmma_wait(int pending) {
  instruction();
  Block& b = block();
  Thread& t = me();
  const int group = b.current % threads_per_rank() / kWarpgroupThreads;
  std::vector<Mma> still;
  for (const Mma& op : t.mmas) {
    if (op.group >= t.mma_commits - pending) {
      still.push_back(op);
      continue;
    }
    for_operand_chunks(op, b.current, [&](int c) {
      if (c >= kChunks) return;
      Chunk& chunk = b.chunks[c];
      if (chunk.tag != op.group)
        fault(Fault::operand_changed_in_flight, "thread %d, tile %d: chunk %d holds %d", b.current,
              op.group, c, chunk.tag);
      chunk.open_reads[group]--;
      chunk.reads.push_back({b.current, t.clock[b.current]});
    });
    complete_mma(op, b.current);
  }
  t.mmas.swap(still);
}

// mbarriers, as PTX defines them for shared::cta: init sets the arrivals a phase expects; each
// arrive counts one (a release); the arrival that completes the phase starts the next. A
// try_wait on parity P succeeds once the phase of parity P has completed, i.e. while the current
// (incomplete) phase has the other parity (an acquire of the completed phase's arrivals).
void mbarrier_init(uint64_t* bar, int count) {
  Block& b = block();
  if (count <= 0 || count > (1 << 20)) fault(Fault::mbarrier_misuse, "count %d", count);
  Mbarrier& m = b.mbarriers[bar];
  m = Mbarrier();
  m.expected = count;
  m.init_thread = b.current;
  m.init_clock = me().clock[b.current];
  m.arrivals_clock.assign(b.config.threads, 0);
  m.completed_clock.assign(b.config.threads, 0);
  m.last_observed.assign(b.config.threads, -2);
  m.arrived_in_phase.assign(b.config.threads, -1);
  *bar = 0x0bad0bad0bad0badull;  // the barrier's word is opaque to the program
}

void mbarrier_arrive(uint64_t* bar) {
  instruction();
  Block& b = block();
  if (!find_mbarrier(bar, "arrive")) return;
  Thread& t = me();
  arrive_on(bar, b.current, t.clock);
  t.clock[b.current]++;  // release
}

// On "not yet" the thread is suspended before the answer returns (the hardware may suspend it
// too); a failed poll straight after another failed poll is no progress, which is how the
// scheduler tells a deadlock from a wait.
bool mbarrier_try_wait(uint64_t* bar, uint32_t parity) {
  const bool polled_again = me().failed_poll_last;
  if (!polled_again) instruction();
  Mbarrier* m = find_mbarrier(bar, "try_wait");
  if (!m) return true;
  if (m->completed % 2 == long(parity & 1)) {
    Thread& t = me();
    t.spinning = polled_again;
    t.polled_barrier = bar;
    t.polled_parity = parity;
    ++the_report.mbarrier_polls;
    suspend(State::polling);
    me().failed_poll_last = true;
    return false;
  }
  observe_phase(*m, bar, parity);
  return true;
}

__attribute__((noinline)) void ldmatrix_x4(uint32_t address, uint32_t* r, bool trans) {
  instruction();
  me().fragment[0] = address;
  wait_for_warp(trans ? WarpOp::ldmatrix_trans : WarpOp::ldmatrix, __builtin_return_address(0));
  std::memcpy(r, me().fragment, 4 * sizeof(uint32_t));
}

void ld_shared(uint32_t address, int bytes, void* value) {
  instruction();
  Block& b = block();
  if (address % bytes || address + bytes > kRankSpace) {
    fault(Fault::bad_instruction_use, "ld.shared of %d bytes by thread %d at shared byte %u", bytes,
          b.current, address);
    std::memset(value, 0, bytes);
    return;
  }
  check_generic_read(b.current, address, bytes);
  ++the_report.shared_loads;
  std::memcpy(value, b.shared + physical(address, rank_of(b.current)), bytes);
}

__attribute__((noinline)) void mma_sync(float* d, const uint32_t* a, const uint32_t* b, bool bf16) {
  instruction();
  Thread& t = me();
  std::memcpy(t.fragment, a, 4 * sizeof(uint32_t));
  std::memcpy(t.fragment + 4, b, 2 * sizeof(uint32_t));
  std::memcpy(t.accumulators, d, 4 * sizeof(float));
  wait_for_warp(bf16 ? WarpOp::mma_bf16 : WarpOp::mma_tf32, __builtin_return_address(0));
  std::memcpy(d, me().accumulators, 4 * sizeof(float));
}

}  // namespace cu3d::emu

// ---- the tensor memory accelerator --------------------------------------------------------------

namespace cu3d::emu {
namespace {

std::mutex tensor_maps_mutex;
std::vector<TensorMapRecord>& tensor_maps() {
  static std::vector<TensorMapRecord> maps;
  return maps;
}
constexpr uint64_t kMapMagic = 0x7e45047a9a9e7a9full;

// The current thread reaches block `rank` of its cluster (a multicast, a remote arrival).
void note_reached(int rank) {
  Block& b = block();
  if (rank != rank_of(b.current))
    b.reached_after[rank] = std::max(b.reached_after[rank], me().cluster_barriers);
}

// The mbarrier at `bar` (in the dynamic shared memory of the current thread's block) as block
// `rank` of the cluster holds it: what mapa gives for a remote arrival or a multicast's
// completion. Null, with a fault, for an address outside the dynamic shared memory.
uint64_t* mbarrier_of_rank(uint64_t* bar, int rank) {
  Block& b = block();
  const size_t stride = dynamic_stride(b.config);
  const auto offset = reinterpret_cast<unsigned char*>(bar) - b.dynamic_shared.data();
  if (offset < 0 || size_t(offset) >= b.dynamic_shared.size() || rank < 0 ||
      rank >= b.config.cluster) {
    fault(Fault::bad_instruction_use,
          "thread %d: a cluster access to block %d of an mbarrier outside the dynamic shared "
          "memory",
          b.current, rank);
    return nullptr;
  }
  return reinterpret_cast<uint64_t*>(b.dynamic_shared.data() + size_t(rank) * stride +
                                     size_t(offset) % stride);
}

// Issues a bulk copy of `rows` rows of 128 bytes to `dst` of block `rank`'s shared window with
// the 128-byte swizzle (16-byte chunk j of the row at address a lands at a + 16 (j ^ ((a >> 7) %
// 8))), completing on `bar` (that block's); row(i, bytes) gives row i's data. The tile it belongs
// to is the issuing thread's latest expect_tx (one per tile: a multicast's other blocks count
// their tiles as the issuing block does).
template <class Row>
void issue_bulk_copy(uint32_t dst, int rank, uint64_t* bar, int rows, Row row, const char* what) {
  Block& b = block();
  Thread& t = me();
  if (dst % 128 || !in_dynamic_shared(dst, uint32_t(rows) * 128)) {
    fault(Fault::copy_outside_dynamic_shared, "thread %d: %s of %d rows to %u", b.current, what,
          rows, dst);
    return;
  }
  if (!find_mbarrier(bar, what)) return;
  if (t.tx_arrivals == 0)
    fault(Fault::mbarrier_misuse, "thread %d: %s before any expect_tx", b.current, what);
  b.shared_space_used = true;
  BulkCopy copy{bar, t.tx_arrivals - 1, uint32_t(rows) * 128, {}};
  unsigned char bytes[128];
  for (int i = 0; i < rows; ++i) {
    row(i, bytes);
    for (int j = 0; j < 8; ++j) {
      const uint32_t linear = dst + uint32_t(i) * 128 + uint32_t(j) * 16;
      const uint32_t address = physical(linear ^ (((linear >> 7) & 7) << 4), rank);
      start_copy_into(address);
      std::array<unsigned char, 16> data;
      std::memcpy(data.data(), bytes + 16 * j, 16);
      copy.chunks.push_back({address, data});
    }
  }
  ++the_report.bulk_copies;
  b.bulk_copies.push_back(std::move(copy));
}

// A bulk copy to the current thread's own block, or with `multicast` (a mask of the cluster's
// blocks) to each block in it, at the same address and completing on its mbarrier at `bar`'s
// offset.
template <class Row>
void issue_bulk_copies(uint32_t dst, uint64_t* bar, int rows, Row row, const char* what,
                       uint16_t multicast = 0) {
  instruction();
  const int own = rank_of(block().current);
  if (!multicast) return issue_bulk_copy(dst, own, bar, rows, row, what);
  if (multicast >> block().config.cluster) {
    fault(Fault::bad_instruction_use, "thread %d: %s multicast to blocks 0x%x of a cluster of %d",
          block().current, what, unsigned(multicast), block().config.cluster);
    return;
  }
  for (int r = 0; r < block().config.cluster; ++r)
    if (multicast >> r & 1)
      if (uint64_t* target = mbarrier_of_rank(bar, r)) {
        issue_bulk_copy(dst, r, target, rows, row, what);
        note_reached(r);
      }
}

}  // namespace

cuda::TensorMap record_tensor_map(const TensorMapRecord& record) {
  std::lock_guard<std::mutex> lock(tensor_maps_mutex);
  tensor_maps().push_back(record);
  cuda::TensorMap map{};
  map.opaque[0] = kMapMagic;
  map.opaque[1] = tensor_maps().size() - 1;
  return map;
}

const TensorMapRecord* find_tensor_map(const cuda::TensorMap* map) {
  std::lock_guard<std::mutex> lock(tensor_maps_mutex);
  if (!map || map->opaque[0] != kMapMagic || map->opaque[1] >= tensor_maps().size()) return nullptr;
  return &tensor_maps()[map->opaque[1]];
}

void fence_mbarrier_init() {
  instruction();
}

void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  instruction();
  Block& b = block();
  Mbarrier* m = find_mbarrier(bar, "arrive.expect_tx");
  if (!m) return;
  Thread& t = me();
  m->tx += bytes;
  t.tx_arrivals++;
  arrive_on(bar, b.current, t.clock);
  t.clock[b.current]++;  // release
}

// Tiled mode: box row i is matrix row `row` + i, its elements from column `col`; zeros outside.
void tma_load_tile_2d_multicast(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int col,
                                int row, uint16_t multicast) {
  const TensorMapRecord* record = find_tensor_map(map);
  if (!record || record->im2col) {
    fault(Fault::bad_instruction_use, "thread %d: a tiled load on no tiled map", block().current);
    return;
  }
  const cuda::TiledMapSpec s = record->tiled_spec;
  const auto* base = static_cast<const unsigned char*>(s.base);
  issue_bulk_copies(
      dst, bar, s.box_rows,
      [&](int i, unsigned char* bytes) {
        std::memset(bytes, 0, 128);
        const int64_t r = int64_t(row) + i;
        for (int e = 0; e < s.box_cols; ++e) {
          const int64_t k = int64_t(col) + e;
          if (r >= 0 && r < s.rows && k >= 0 && k < s.cols)
            std::memcpy(bytes + e * s.element_bytes, base + (r * s.cols + k) * s.element_bytes,
                        size_t(s.element_bytes));
        }
      },
      "a tiled bulk copy", multicast);
}

void tma_load_tile_2d(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int col, int row) {
  tma_load_tile_2d_multicast(dst, map, bar, col, row, 0);
}

// Im2col mode (PTX ISA, "Tensor copy: im2col mode"): the positions of the bounding box
// [lower, size - 1 + upper] in w, h, d (and n unbounded) walked from (w, h, d, n), w fastest;
// row i holds the pixel at the i-th position plus the offset (ow, oh, od), channels from c,
// zeros where the pixel or a channel is outside the tensor.
void tma_load_im2col_5d_multicast(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int c,
                                  int w, int h, int d, int n, uint16_t ow, uint16_t oh, uint16_t od,
                                  uint16_t multicast) {
  const TensorMapRecord* record = find_tensor_map(map);
  if (!record || !record->im2col) {
    fault(Fault::bad_instruction_use, "thread %d: an im2col load on no im2col map",
          block().current);
    return;
  }
  const cuda::Im2colMapSpec s = record->im2col_spec;
  const int64_t cw = s.w - 1 + s.upper.w - s.lower.w + 1, ch = s.h - 1 + s.upper.h - s.lower.h + 1,
                cd = s.d - 1 + s.upper.d - s.lower.d + 1;
  if (w < s.lower.w || w >= s.lower.w + cw || h < s.lower.h || h >= s.lower.h + ch ||
      d < s.lower.d || d >= s.lower.d + cd || n < 0) {
    fault(Fault::bad_instruction_use,
          "thread %d: im2col load from (w %d, h %d, d %d, n %d) "
          "outside the bounding box",
          block().current, w, h, d, n);
    return;
  }
  const int64_t start =
      ((int64_t(n) * cd + (d - s.lower.d)) * ch + (h - s.lower.h)) * cw + (w - s.lower.w);
  const auto* base = static_cast<const unsigned char*>(s.base);
  issue_bulk_copies(
      dst, bar, s.pixels,
      [&](int i, unsigned char* bytes) {
        std::memset(bytes, 0, 128);
        int64_t p = start + i;
        const int64_t x = p % cw + s.lower.w + ow;
        p /= cw;
        const int64_t y = p % ch + s.lower.h + oh;
        p /= ch;
        const int64_t z = p % cd + s.lower.d + od;
        const int64_t sample = p / cd;
        if (x < 0 || x >= s.w || y < 0 || y >= s.h || z < 0 || z >= s.d || sample >= s.n) return;
        const int64_t pixel = ((sample * s.d + z) * s.h + y) * s.w + x;
        for (int e = 0; e < s.channels && c + e < s.c; ++e)
          std::memcpy(bytes + e * s.element_bytes, base + (pixel * s.c + c + e) * s.element_bytes,
                      size_t(s.element_bytes));
      },
      "an im2col bulk copy", multicast);
}

void tma_load_im2col_5d(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int c, int w,
                        int h, int d, int n, uint16_t ow, uint16_t oh, uint16_t od) {
  tma_load_im2col_5d_multicast(dst, map, bar, c, w, h, d, n, ow, oh, od, 0);
}

uint32_t cluster_ctarank() {
  return uint32_t(rank_of(block().current));
}

void cluster_sync() {
  instruction();
  suspend(State::at_cluster_barrier);
}

void mbarrier_arrive_cluster(uint64_t* bar, uint32_t rank) {
  instruction();
  Block& b = block();
  uint64_t* target = mbarrier_of_rank(bar, int(rank));
  if (!target || !find_mbarrier(target, "remote arrive")) return;
  note_reached(int(rank));
  Thread& t = me();
  arrive_on(target, b.current, t.clock);
  t.clock[b.current]++;  // release
}

}  // namespace cu3d::emu
