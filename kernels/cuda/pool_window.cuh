// The windows of a 3D max-pool in device code, shared by the pool kernels (pool3d.cu) and the
// layer-norm block's normalize + ReLU + pool kernel (layer_norm.cu).
#pragma once

#include <cuda_runtime.h>

#include "kernels/shapes.h"

namespace cu3d::cuda {

// Output window (n, d, h, w) of a pool.
struct PoolWindow {
  int n, d, h, w;
};

// The window of pooled position p (outputs in NDHW order). Index is int where every index fits:
// its four divisions are then 32-bit, several times cheaper than 64-bit ones.
template <class Index>
__device__ inline PoolWindow pool_window(const Pool3dShape& s, Index p) {
  return {int(p / s.out.w / s.out.h / s.out.d), int(p / s.out.w / s.out.h % s.out.d),
          int(p / s.out.w % s.out.h), int(p % s.out.w)};
}

// Visits the valid input positions of window o in (d, h, w) order (padded ones excluded) and calls
// visit(position) with the input position ((n * in.d + z) * in.h + y) * in.w + x as an Index;
// stops early when visit returns true.
template <class Index, class Visit>
__device__ inline void for_window(const Pool3dShape& s, PoolWindow o, Visit visit) {
  const int z0 = o.d * s.stride.d - s.pad_before.d;
  const int y0 = o.h * s.stride.h - s.pad_before.h;
  const int x0 = o.w * s.stride.w - s.pad_before.w;
  for (int z = max(z0, 0); z < min(z0 + s.window.d, s.in.d); ++z)
    for (int y = max(y0, 0); y < min(y0 + s.window.h, s.in.h); ++y)
      for (int x = max(x0, 0); x < min(x0 + s.window.w, s.in.w); ++x)
        if (visit(((Index(o.n) * s.in.d + z) * s.in.h + y) * s.in.w + x)) return;
}

}  // namespace cu3d::cuda
