// The PTX instructions the conv kernels issue by hand, one small wrapper each: every line of
// inline assembly in kernels/cuda lives here. Device code only.
//
// Why one file: these are the instructions whose semantics the kernels' correctness rests on
// (asynchronous copies, tensor-core MMAs that read shared memory behind the threads' backs,
// mbarrier hand-overs), and the only ones a C++ compiler for the host cannot run. Keeping them
// together lets a host emulation swap in its own definitions and run the real kernel code
// unchanged, thread by thread: tests/emulation defines CU3D_PTX_EMULATION as the name of its
// header, which then replaces everything below (the same names, in the same namespace).
//
// References: PTX ISA 8.x, "Data Movement and Conversion Instructions" (cp.async, ldmatrix),
// "Warp Level Matrix Multiply-Accumulate Instructions" (mma.sync), "Asynchronous Warpgroup Level
// Matrix Multiply-Accumulate Instructions" (wgmma, sm_90a), "Parallel Synchronization and
// Communication Instructions: mbarrier", "Miscellaneous Instructions: setmaxnreg",
// "cp.async.bulk.tensor" (the tensor memory accelerator, sm_90), "barrier.cluster" and "mapa"
// (thread block clusters, sm_90).
#pragma once

#include <cstdint>

#include "kernels/cuda/tensor_map.h"
#include "kernels/precision.h"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CU3D_WGMMA_DEVICE 1  // this device pass may use wgmma, mbarriers and setmaxnreg
#endif

#if defined(CU3D_PTX_EMULATION)
#include CU3D_PTX_EMULATION
#else

namespace cu3d::cuda::ptx {

// ---- conversions -------------------------------------------------------------------------------

// x rounded to tf32 (10 mantissa bits, to nearest, ties away from zero), as fp32 bits.
__device__ inline uint32_t to_tf32(float x) {
  uint32_t u;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
  return u;
}

// ---- warp-level MMA (sm_80+) -------------------------------------------------------------------

// d += a * b on one 16 x 8 tile: A 16 x 16 bf16 (4 words per lane), B 16 x 8 (2 words), fp32 d.
__device__ inline void mma_m16n8k16_bf16(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// d += a * b on one 16 x 8 tile: A 16 x 8 tf32 (4 words per lane), B 8 x 8 (2 words), fp32 d.
__device__ inline void mma_m16n8k8_tf32(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// ---- shared memory -----------------------------------------------------------------------------

// The block's dynamic shared memory (the launch's third argument), 128-byte aligned.
__device__ inline unsigned char* dynamic_shared_memory() {
  extern __shared__ __align__(128) unsigned char dynamic_shared[];
  return dynamic_shared;
}

// The shared-state-space address of a pointer into shared memory, as the instructions below take.
__device__ inline uint32_t shared_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// Four 8 x 8 b16 matrices from shared memory into fragments, rows addressed by lanes 0-31.
__device__ inline void ldmatrix_x4(uint32_t address, uint32_t* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
// The same, each matrix transposed on the way.
__device__ inline void ldmatrix_x4_trans(uint32_t address, uint32_t* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// One 32-bit word of shared memory: what a lane loads of an mma fragment that ldmatrix cannot
// deliver (tf32 values read across the tile's rows, conv3d_bwd_filter_pipelined.cuh).
__device__ inline uint32_t ld_shared_u32(uint32_t address) {
  uint32_t value;
  asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(value) : "r"(address));
  return value;
}
// Four fp32 values, 16 aligned bytes of shared memory: a row's chunk of r in the FFMA tiles
// (conv3d_pipelined_ffma.cuh). volatile, as every shared read here: the compiler must neither
// merge two reads of one ring slot nor move one across the barrier that hands the slot over.
__device__ inline float4 ld_shared_f32x4(uint32_t address) {
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(address));
  return v;
}

// ---- asynchronous copies (sm_80+) --------------------------------------------------------------

// 16 bytes global -> shared, bypassing L1; `bytes` 0 writes zeros and reads nothing.
__device__ inline void cp_async16(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
// Closes this thread's group of copies issued since the last commit.
__device__ inline void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
// Waits until at most `Pending` committed groups of this thread are still in flight.
template <int Pending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}
// Orders this thread's shared-memory writes before later reads by the async proxy (wgmma).
__device__ inline void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

#if defined(CU3D_WGMMA_DEVICE)

// ---- warpgroup MMA (sm_90a) --------------------------------------------------------------------

// Orders the warpgroup's accumulator registers and shared-memory writes before the next wgmma.
__device__ inline void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
// Closes the warpgroup's group of wgmma issued since the last commit.
__device__ inline void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most `Pending` committed wgmma groups of the warpgroup are in flight.
template <int Pending>
__device__ inline void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}

// The 64 accumulator operands of one m64n128 instruction, %0 .. %63.
#define CU3D_WGMMA_D_REGS                                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"
#define CU3D_WGMMA_D_OPERANDS(d)                                                                  \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),  \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),  \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),  \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),  \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d += A * B for one k-step of an m64n128 tile: A 64 x 32 bytes and B 128 x 32 bytes, both K-major
// in shared memory (descriptors a, b); fp32 accumulation, 64 accumulators per thread. The
// immediates: scale-d 1 (accumulate), scale-a and scale-b 1 (no negation), and for bf16
// transpose-a and -b 0 (K-major; tf32 has no transpose).
template <Precision P>
__device__ inline void wgmma_m64n128(float (&d)[64], uint64_t a, uint64_t b) {
  if constexpr (P == Precision::bf16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " CU3D_WGMMA_D_REGS
        ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : CU3D_WGMMA_D_OPERANDS(d)
        : "l"(a), "l"(b));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 " CU3D_WGMMA_D_REGS
        ", %64, %65, p, 1, 1;\n}\n"
        : CU3D_WGMMA_D_OPERANDS(d)
        : "l"(a), "l"(b));
  }
}

#undef CU3D_WGMMA_D_OPERANDS
#undef CU3D_WGMMA_D_REGS

// Pins the accumulators in place for the compiler: an empty asm that "reads and writes" each
// one, so no access to them moves across the wgmma waits around it.
__device__ inline void fence_accumulators(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i)
    asm volatile("" : "+f"(d[i])::"memory");
}

// ---- mbarriers (sm_90) -------------------------------------------------------------------------

// Sets the barrier up for `count` arrivals per phase.
__device__ inline void mbarrier_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(bar)), "r"(count)
               : "memory");
}
// Arrives on the barrier (release semantics: this thread's writes before it are visible to the
// threads whose wait sees the phase complete).
__device__ inline void mbarrier_arrive(uint64_t* bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(
                   shared_address(bar))
               : "memory");
}
// Has the copy unit arrive on the barrier once every cp.async this thread issued before it has
// landed; the thread goes on at once. .noinc: the arrival counts as one of the barrier's expected
// arrivals, like mbarrier_arrive's.
__device__ inline void cp_async_mbarrier_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(shared_address(bar))
               : "memory");
}
// Whether the phase of parity `parity` has completed (acquire semantics when it has). The thread
// may be suspended for a while inside before the answer is no.
__device__ inline bool mbarrier_try_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(shared_address(bar)), "r"(parity)
      : "memory");
  return done != 0;
}

// Makes the mbarrier inits before it visible to the asynchronous proxy (the TMA's complete_tx),
// as the barrier that follows makes them visible to the other threads.
__device__ inline void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Arrives on the barrier and adds `bytes` to the transactions its current phase waits for: the
// phase completes once its arrivals are made and that many bytes of bulk copies have completed
// on it (complete_tx).
__device__ inline void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile(
      "{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(
          shared_address(bar)),
      "r"(bytes)
      : "memory");
}

// ---- the tensor memory accelerator (sm_90) -----------------------------------------------------

// Fetches a tensor map into the TMA unit's cache, so the first load that names it does not wait
// for it.
__device__ inline void prefetch_tensormap(const TensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(map) : "memory");
}

// One box of the 2-D tiled map `map` (tensor_map.h), from element (col, row), into shared memory
// at `dst` (1024-byte aligned for the 128-byte swizzle); its bytes complete on `bar`. The copy
// writes through the async proxy: once `bar`'s phase is seen complete, wgmma may read it.
__device__ inline void tma_load_tile_2d(uint32_t dst, const TensorMap* map, uint64_t* bar, int col,
                                        int row) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4}], [%2];\n" ::"r"(dst),
      "l"(map), "r"(shared_address(bar)), "r"(col), "r"(row)
      : "memory");
}
// One load of the 5-D im2col map `map`: the pixels from (c, w, h, d, n) on, each shifted by the
// filter offset (ow, oh, od), into shared memory at `dst`; its bytes complete on `bar`.
__device__ inline void tma_load_im2col_5d(uint32_t dst, const TensorMap* map, uint64_t* bar, int c,
                                          int w, int h, int d, int n, uint16_t ow, uint16_t oh,
                                          uint16_t od) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5, %6, %7}], [%2], {%8, %9, %10};\n" ::"r"(dst),
      "l"(map), "r"(shared_address(bar)), "r"(c), "r"(w), "r"(h), "r"(d), "r"(n), "h"(ow), "h"(oh),
      "h"(od)
      : "memory");
}

// ---- thread block clusters (sm_90) --------------------------------------------------------------

// This block's rank in its cluster.
__device__ inline uint32_t cluster_ctarank() {
  uint32_t rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(rank));
  return rank;
}
// Waits until every thread of every block of the cluster has arrived (release on arrival,
// acquire on the wait): what one block wrote before it, the other blocks see after it.
__device__ inline void cluster_sync() {
  asm volatile("barrier.cluster.arrive.aligned;\nbarrier.cluster.wait.aligned;\n" ::: "memory");
}
// Arrives on the mbarrier at `bar`'s place in the shared memory of the cluster's block `rank`
// (mapa gives that block's address for it).
__device__ inline void mbarrier_arrive_cluster(uint64_t* bar, uint32_t rank) {
  asm volatile(
      "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(shared_address(bar)),
      "r"(rank)
      : "memory");
}
// tma_load_im2col_5d into the shared memory of every block of the cluster in `multicast` (a
// mask of ranks), at the same address in each, its bytes completing on each block's mbarrier at
// `bar`'s place; an empty mask loads into this block alone, as tma_load_im2col_5d.
__device__ inline void tma_load_im2col_5d_multicast(uint32_t dst, const TensorMap* map,
                                                    uint64_t* bar, int c, int w, int h, int d,
                                                    int n, uint16_t ow, uint16_t oh, uint16_t od,
                                                    uint16_t multicast) {
  if (multicast == 0) return tma_load_im2col_5d(dst, map, bar, c, w, h, d, n, ow, oh, od);
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%3, %4, %5, %6, %7}], [%2], {%8, %9, %10}, %11;\n" ::"r"(
          dst),
      "l"(map), "r"(shared_address(bar)), "r"(c), "r"(w), "r"(h), "r"(d), "r"(n), "h"(ow), "h"(oh),
      "h"(od), "h"(multicast)
      : "memory");
}
// tma_load_tile_2d likewise.
__device__ inline void tma_load_tile_2d_multicast(uint32_t dst, const TensorMap* map, uint64_t* bar,
                                                  int col, int row, uint16_t multicast) {
  if (multicast == 0) return tma_load_tile_2d(dst, map, bar, col, row);
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%3, %4}], [%2], %5;\n" ::"r"(dst),
      "l"(map), "r"(shared_address(bar)), "r"(col), "r"(row), "h"(multicast)
      : "memory");
}

// ---- register reallocation (sm_90a) ------------------------------------------------------------

// Raises (inc) or lowers (dec) the registers of every thread in the warpgroup to `Registers`.
template <int Registers>
__device__ inline void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Registers));
}
template <int Registers>
__device__ inline void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Registers));
}

#endif  // CU3D_WGMMA_DEVICE

}  // namespace cu3d::cuda::ptx

#endif  // CU3D_PTX_EMULATION
