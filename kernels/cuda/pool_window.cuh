// The windows of a 3D max-pool in device code, shared by the pool kernels (pool3d.cu) and the
// layer-norm block's normalize + ReLU + pool kernel (layer_norm.cu).
#pragma once

#include <cuda_runtime.h>

#include <type_traits>

#include "kernels/shapes.h"

namespace cu3d::cuda {

// Whether no input position lies in two windows: the stride is at least the window on every axis.
inline bool windows_disjoint(const Pool3dShape& s) {
  return s.stride.d >= s.window.d && s.stride.h >= s.window.h && s.stride.w >= s.window.w;
}

// Whether disjoint windows also reach every input position: each axis tiled without gaps up to
// its end (the first window starts at or before 0, in the padding). With windows_disjoint: every
// input position lies in exactly one window (every C3D pool, pool5's padded one included).
inline bool windows_cover_input(const Pool3dShape& s) {
  auto axis = [](int in, int window, int stride, int pad, int out) {
    return stride == window && (out - 1) * stride - pad + window >= in;
  };
  return axis(s.in.d, s.window.d, s.stride.d, s.pad_before.d, s.out.d) &&
         axis(s.in.h, s.window.h, s.stride.h, s.pad_before.h, s.out.h) &&
         axis(s.in.w, s.window.w, s.stride.w, s.pad_before.w, s.out.w);
}

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

// Calls visit(k, position, home) for the kD*kH*kW positions of window o, k counting in (d, h, w)
// order. A position in the padding or past the input's end is clamped on each axis into the
// input, which lands it on an input position of the same window: the window is a run of
// consecutive coordinates on each axis and holds at least one input position (check_windows), so
// the nearest input coordinate lies in it. `home` is the k of the position visited, k itself for
// an input position, another k for a clamped repeat. So every position visited is an input
// position of window o, each visited at its home once, and clamping keeps the order of first
// visits: an input position's first visit is at its smallest preimage on each axis, which grows
// with the coordinate. The loops have compile-time bounds, so they unroll: the caller's loads are
// all issued before any of them is used, padded windows (pool5's) included.
template <int kD, int kH, int kW, class Index, class Visit>
__device__ inline void for_clamped_window(const Pool3dShape& s, PoolWindow o, Visit visit) {
  const int z0 = o.d * s.stride.d - s.pad_before.d;
  const int y0 = o.h * s.stride.h - s.pad_before.h;
  const int x0 = o.w * s.stride.w - s.pad_before.w;
  auto clamp = [](int i, int n) { return min(max(i, 0), n - 1); };
#pragma unroll
  for (int z = 0; z < kD; ++z) {
    const int zc = clamp(z0 + z, s.in.d);
#pragma unroll
    for (int y = 0; y < kH; ++y) {
      const int yc = clamp(y0 + y, s.in.h);
      const Index line = ((Index(o.n) * s.in.d + zc) * s.in.h + yc) * s.in.w;
#pragma unroll
      for (int x = 0; x < kW; ++x) {
        const int xc = clamp(x0 + x, s.in.w);
        visit((z * kH + y) * kW + x, line + xc, ((zc - z0) * kH + (yc - y0)) * kW + (xc - x0));
      }
    }
  }
}

// best = the max over window o of value_at(position, v, inside) (V channels at a time), padded
// positions excluded, a NaN sticking as the result once met. With the window's size known at
// compile time (kD, kH, kW > 0: C3D's 2x2x2 and 1x2x2, the launch checks that s.window matches) the
// window's positions are clamped into the input (for_clamped_window): a padded position repeats one
// of the window's inputs, which leaves the max as it is (and a first NaN first), so every window
// loads all its positions before the first comparison: kD*kH*kW loads in flight per thread.
// `inside` is false on such repeats (a value_at that also writes skips them), true otherwise.
// for_window's run-time bounded loops keep one, each waiting on the last comparison; that held
// the plain pool at 61-77 % of the H200's copy bandwidth on C3D's large pools and 16 % on pool5
// (session 7's run), and pool5's padded windows at 75 % of a same-size copy while they alone
// still took it (session 14, H100). kD = 0 (any size) takes for_window.
template <int kD, int kH, int kW, int V, class Index, class ValueAt>
__device__ inline void window_max(const Pool3dShape& s, PoolWindow o, ValueAt value_at,
                                  float (&best)[V]) {
#pragma unroll
  for (int e = 0; e < V; ++e)
    best[e] = -INFINITY;
  auto take = [&](const float(&v)[V]) {
#pragma unroll
    for (int e = 0; e < V; ++e)
      if (v[e] > best[e] || v[e] != v[e]) best[e] = v[e];
  };
  if constexpr (kD > 0) {
    float v[kD * kH * kW][V];
    for_clamped_window<kD, kH, kW, Index>(
        s, o, [&](int k, Index q, int home) { value_at(q, v[k], home == k); });
#pragma unroll
    for (int k = 0; k < kD * kH * kW; ++k)
      take(v[k]);
  } else {
    for_window<Index>(s, o, [&](Index q) {
      float v[V];
      value_at(q, v, true);
      take(v);
      return false;
    });
  }
}

// Runs launch(kD, kH, kW) as std::integral_constants for the window sizes that have unrolled
// kernels (C3D's pools), with 0, 0, 0 for any other.
template <class Launch>
void dispatch_window(const Pool3dShape& s, Launch launch) {
  using std::integral_constant;
  if (s.window.d == 2 && s.window.h == 2 && s.window.w == 2)
    launch(integral_constant<int, 2>{}, integral_constant<int, 2>{}, integral_constant<int, 2>{});
  else if (s.window.d == 1 && s.window.h == 2 && s.window.w == 2)
    launch(integral_constant<int, 1>{}, integral_constant<int, 2>{}, integral_constant<int, 2>{});
  else
    launch(integral_constant<int, 0>{}, integral_constant<int, 0>{}, integral_constant<int, 0>{});
}

}  // namespace cu3d::cuda
