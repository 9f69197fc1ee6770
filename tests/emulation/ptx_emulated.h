// The emulation's definitions of kernels/cuda/ptx.cuh (named by CU3D_PTX_EMULATION): the same
// wrappers, on the block emulator's instructions (block.h).
#pragma once

#include <cstdint>

#include "block.h"
#include "kernels/precision.h"

namespace cu3d::cuda::ptx {

inline uint32_t to_tf32(float x) {
  return emu::to_tf32(x);
}

inline void mma_m16n8k16_bf16(float* d, const uint32_t* a, const uint32_t* b) {
  emu::mma_sync(d, a, b, true);
}
inline void mma_m16n8k8_tf32(float* d, const uint32_t* a, const uint32_t* b) {
  emu::mma_sync(d, a, b, false);
}

inline unsigned char* dynamic_shared_memory() {
  return emu::dynamic_shared_memory();
}
inline uint32_t shared_address(const void* p) {
  return emu::shared_address(p);
}
inline void ldmatrix_x4(uint32_t address, uint32_t* r) {
  emu::ldmatrix_x4(address, r, false);
}
inline void ldmatrix_x4_trans(uint32_t address, uint32_t* r) {
  emu::ldmatrix_x4(address, r, true);
}
inline uint32_t ld_shared_u32(uint32_t address) {
  uint32_t value;
  emu::ld_shared(address, 4, &value);
  return value;
}
inline float4 ld_shared_f32x4(uint32_t address) {
  float4 value;
  emu::ld_shared(address, 16, &value);
  return value;
}

inline void cp_async16(uint32_t dst, const void* src, int bytes) {
  emu::cp_async16(dst, src, bytes);
}
inline void cp_async_commit() {
  emu::cp_async_commit();
}
template <int Pending>
inline void cp_async_wait() {
  emu::cp_async_wait(Pending);
}
inline void fence_proxy_async() {
  emu::fence_proxy_async();
}

// The emulated wgmma completes only at its wait, so the accumulators need no fence of their own.
inline void wgmma_fence() {}
inline void wgmma_commit() {
  emu::wgmma_commit();
}
template <int Pending>
inline void wgmma_wait() {
  emu::wgmma_wait(Pending);
}
template <Precision P>
inline void wgmma_m64n128(float (&d)[64], uint64_t a, uint64_t b) {
  emu::wgmma_m64n128(d, a, b, P == Precision::bf16);
}
inline void fence_accumulators(float (&)[64]) {}

inline void mbarrier_init(uint64_t* bar, int count) {
  emu::mbarrier_init(bar, count);
}
inline void mbarrier_arrive(uint64_t* bar) {
  emu::mbarrier_arrive(bar);
}
inline void cp_async_mbarrier_arrive_noinc(uint64_t* bar) {
  emu::cp_async_mbarrier_arrive_noinc(bar);
}
inline bool mbarrier_try_wait(uint64_t* bar, uint32_t parity) {
  return emu::mbarrier_try_wait(bar, parity);
}
inline void fence_mbarrier_init() {
  emu::fence_mbarrier_init();
}
inline void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  emu::mbarrier_arrive_expect_tx(bar, bytes);
}
// The emulated copies read the map's specification when issued: nothing to fetch ahead.
inline void prefetch_tensormap(const cuda::TensorMap*) {}
inline void tma_load_tile_2d(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int col,
                             int row) {
  emu::tma_load_tile_2d(dst, map, bar, col, row);
}
inline void tma_load_im2col_5d(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar, int c,
                               int w, int h, int d, int n, uint16_t ow, uint16_t oh, uint16_t od) {
  emu::tma_load_im2col_5d(dst, map, bar, c, w, h, d, n, ow, oh, od);
}

inline uint32_t cluster_ctarank() {
  return emu::cluster_ctarank();
}
inline void cluster_sync() {
  emu::cluster_sync();
}
inline void mbarrier_arrive_cluster(uint64_t* bar, uint32_t rank) {
  emu::mbarrier_arrive_cluster(bar, rank);
}
inline void tma_load_tile_2d_multicast(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar,
                                       int col, int row, uint16_t multicast) {
  emu::tma_load_tile_2d_multicast(dst, map, bar, col, row, multicast);
}
inline void tma_load_im2col_5d_multicast(uint32_t dst, const cuda::TensorMap* map, uint64_t* bar,
                                         int c, int w, int h, int d, int n, uint16_t ow,
                                         uint16_t oh, uint16_t od, uint16_t multicast) {
  emu::tma_load_im2col_5d_multicast(dst, map, bar, c, w, h, d, n, ow, oh, od, multicast);
}

// Register reallocation changes nothing a host thread can observe.
template <int Registers>
inline void setmaxnreg_inc() {}
template <int Registers>
inline void setmaxnreg_dec() {}

}  // namespace cu3d::cuda::ptx
