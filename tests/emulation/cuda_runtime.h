// Host stand-in for <cuda_runtime.h> in the emulation tests: the CUDA keywords and built-ins the
// conv kernels use, mapped onto the block emulator (block.h). The tests' include path puts this
// directory first, so the kernels' own #include <cuda_runtime.h> lands here; nothing else in
// the project sees it.
//
// __shared__ is `static thread_local`: a block's threads are fibers of one OS thread and share
// the variable, as a block shares shared memory; the blocks of a concurrent launch run on OS
// threads of their own, so each has its own.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "block.h"

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __grid_constant__
#define __trap() ::cu3d::emu::trap(__FILE__, __LINE__)

#define threadIdx (::cu3d::emu::thread_index())
#define blockIdx (::cu3d::emu::block_index())
#define blockDim (::cu3d::emu::block_dim())
#define gridDim (::cu3d::emu::grid_dim())
#define __syncthreads() ::cu3d::emu::syncthreads()
inline void __syncwarp(unsigned = 0xffffffffu) {
  ::cu3d::emu::syncwarp();
}

using std::max;
using std::min;

struct float2 {
  float x, y;
};
struct float4 {
  float x, y, z, w;
};
struct double2 {
  double x, y;
};
inline float2 make_float2(float x, float y) {
  return {x, y};
}
inline float4 make_float4(float x, float y, float z, float w) {
  return {x, y, z, w};
}
inline double2 make_double2(double x, double y) {
  return {x, y};
}
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  operator ::cu3d::emu::Dim3() const { return {x, y, z}; }
};

template <class T>
T __ldg(const T* p) {
  return *p;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Integer max on global memory; counted, since the pool epilogue's result depends on every one.
// Atomics, fences and sleeps are where a concurrent launch may switch blocks (global_sync_point);
// memory is sequentially consistent either way, so the fences order nothing more.
inline int atomicMax(int* p, int v) {
  ::cu3d::emu::note_atomic();
  const int old = *p;
  if (v > old) *p = v;
  ::cu3d::emu::global_sync_point(false);
  return old;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  ::cu3d::emu::note_atomic();
  const unsigned old = *p;
  *p = old + v;
  ::cu3d::emu::global_sync_point(false);
  return old;
}
inline unsigned atomicExch(unsigned* p, unsigned v) {
  ::cu3d::emu::note_atomic();
  const unsigned old = *p;
  *p = v;
  ::cu3d::emu::global_sync_point(false);
  return old;
}
inline void __threadfence() {
  ::cu3d::emu::global_sync_point(false);
}
inline void __nanosleep(unsigned) {
  ::cu3d::emu::global_sync_point(true);
}

// The cache hints of the loads and stores change nothing but speed.
template <class T>
T __ldcg(const T* p) {
  return *p;
}
template <class T>
T __ldcs(const T* p) {
  return *p;
}
template <class T>
void __stcs(T* p, T v) {
  *p = v;
}

// A warp shuffle: the lane waits until all 32 lanes of its warp reach the same call.
template <class T>
__attribute__((noinline)) T __shfl_xor_sync(unsigned members, T v, int lane_mask) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = ::cu3d::emu::shuffle_xor(members, bits, lane_mask, __builtin_return_address(0));
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// The runtime API the kernels' sources call; memory is host memory, streams are ignored (every
// emulated launch runs to completion before it returns).
enum cudaError_t { cudaSuccess = 0 };
using cudaStream_t = struct CUstream_st*;
using cudaEvent_t = struct CUevent_st*;
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize,
  cudaFuncAttributePreferredSharedMemoryCarveout
};
enum { cudaSharedmemCarveoutMaxShared = 100 };
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel*, cudaFuncAttribute, int) {
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
