// 16-byte access to fp32 arrays for the memory-bound kernels (pool3d.cu, layer_norm.cu): V = 4
// consecutive floats through one float4 load or store, V = 1 through a plain one. Arrays indexed
// by unrolled constants stay in registers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

namespace cu3d::cuda {

// Whether every array is 16-byte aligned (what the float4 paths need).
inline bool aligned16(std::initializer_list<const void*> arrays) {
  for (const void* a : arrays)
    if (reinterpret_cast<uintptr_t>(a) % 16 != 0) return false;
  return true;
}

__device__ inline float4 load4(const float* p) {
  return __ldg(reinterpret_cast<const float4*>(p));
}

__device__ inline void store4(float* p, float4 v) {
  *reinterpret_cast<float4*>(p) = v;
}

// The streaming forms (ld/st.global.cs, evict first): for a last read, and for an output no
// kernel reads soon, so neither pushes data that will be read again out of L2.
__device__ inline float4 load4_last_use(const float* p) {
  return __ldcs(reinterpret_cast<const float4*>(p));
}

__device__ inline void store4_streaming(float* p, float4 v) {
  __stcs(reinterpret_cast<float4*>(p), v);
}

template <int V>
__device__ inline void load_vec(const float* p, float (&out)[V]) {
  if constexpr (V == 4) {
    const float4 q = load4(p);
    out[0] = q.x, out[1] = q.y, out[2] = q.z, out[3] = q.w;
  } else {
    out[0] = __ldg(p);
  }
}

template <int V>
__device__ inline void store_vec(float* p, const float (&in)[V]) {
  if constexpr (V == 4)
    store4(p, make_float4(in[0], in[1], in[2], in[3]));
  else
    *p = in[0];
}

}  // namespace cu3d::cuda
