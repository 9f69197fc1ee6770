// The conv geometry that the implicit-GEMM kernels' gathers work in (32-bit sizes, division by
// run-time constants as multiply-high and shift) and the index splits they share. Plain C++ that
// host and device both compile (kernels/host_device.h), so the CPU suite checks the kernels'
// gathers with the very functions they call (tests/cpu/test_conv3d_gathers.cpp).
#pragma once

#include <cstdint>

#include "kernels/error.h"
#include "kernels/host_device.h"
#include "kernels/shapes.h"

namespace cu3d::cuda::igemm {

// Division by a run-time constant as a multiply-high and a shift (Granlund-Montgomery, as in
// CUTLASS's FastDivmod): ~4 instructions instead of ~25 for the pixel and tap decompositions
// that every gathered element needs. Valid for dividends below 2^31 (checked on the host).
struct FastDiv {
  uint32_t d = 1, mul = 0, shift = 0;
  FastDiv() = default;
  explicit FastDiv(uint32_t divisor) : d(divisor) {
    while ((1u << shift) < d)
      ++shift;
    mul = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }
  CU3D_HOST_DEVICE uint32_t div(uint32_t x) const {
#if defined(__CUDA_ARCH__)
    const uint32_t high = __umulhi(x, mul);
#else
    const uint32_t high = uint32_t((uint64_t(x) * mul) >> 32);
#endif
    return uint32_t((uint64_t(high) + x) >> shift);
  }
  // Returns x / d and sets *rem = x % d.
  CU3D_HOST_DEVICE uint32_t divmod(uint32_t x, uint32_t* rem) const {
    const uint32_t q = div(x);
    *rem = x - q * d;
    return q;
  }
};

// Conv geometry in the form the gathers need: 32-bit sizes and fast dividers.
struct Geometry {
  int n, c, k;
  int id, ih, iw, od, oh, ow;
  int kd, kh, kw, sd, sh, sw, pd, ph, pw;
  int taps;  // kd * kh * kw
  FastDiv div_c, div_k, div_kw, div_kh, div_ow, div_oh, div_od, div_iw, div_ih, div_id;
};

// Splits a flat NDHWC position index into (n, z, y, x) of a grid of extent (d, h, w).
struct Pixel {
  int n, z, y, x;
};
CU3D_HOST_DEVICE inline Pixel split_pixel(uint32_t p, const FastDiv& dd, const FastDiv& dh,
                                          const FastDiv& dw) {
  uint32_t x, y, z;
  p = dw.divmod(p, &x);
  p = dh.divmod(p, &y);
  p = dd.divmod(p, &z);
  return {int(p), int(z), int(y), int(x)};
}

// Splits a tap index (kd, kh, kw) row-major.
struct Tap {
  int d, h, w;
};
CU3D_HOST_DEVICE inline Tap split_tap(uint32_t t, const Geometry& g) {
  uint32_t w, h;
  t = g.div_kw.divmod(t, &w);
  t = g.div_kh.divmod(t, &h);
  return {int(t), int(h), int(w)};
}

// Offset of input element (pixel of the output grid, tap, channel 0), or -1 in the padding.
CU3D_HOST_DEVICE inline int input_offset(const Geometry& g, const Pixel& o, const Tap& t) {
  const int z = o.z * g.sd - g.pd + t.d, y = o.y * g.sh - g.ph + t.h, x = o.x * g.sw - g.pw + t.w;
  if (unsigned(z) >= unsigned(g.id) || unsigned(y) >= unsigned(g.ih) ||
      unsigned(x) >= unsigned(g.iw))
    return -1;
  return (((o.n * g.id + z) * g.ih + y) * g.iw + x) * g.c;
}

// Checks that every index fits the kernels' 32-bit arithmetic and builds the geometry.
inline Geometry make_geometry(const Conv3dShape& s, const char* op) {
  constexpr int64_t kMax = int64_t(1) << 31;
  CU3D_CHECK(s.input_size() < kMax && s.output_size() < kMax && s.filter_size() < kMax,
             "{}: tensors of x {}, y {}, w {} elements exceed the 2^31 the CUDA kernels index; "
             "use a smaller batch",
             op, s.input_size(), s.output_size(), s.filter_size());
  Geometry g;
  g.n = s.n, g.c = s.c, g.k = s.k;
  g.id = s.in.d, g.ih = s.in.h, g.iw = s.in.w;
  g.od = s.out.d, g.oh = s.out.h, g.ow = s.out.w;
  g.kd = s.kernel.d, g.kh = s.kernel.h, g.kw = s.kernel.w;
  g.sd = s.stride.d, g.sh = s.stride.h, g.sw = s.stride.w;
  g.pd = s.pad_before.d, g.ph = s.pad_before.h, g.pw = s.pad_before.w;
  g.taps = g.kd * g.kh * g.kw;
  g.div_c = FastDiv(g.c), g.div_k = FastDiv(g.k);
  g.div_kw = FastDiv(g.kw), g.div_kh = FastDiv(g.kh);
  g.div_ow = FastDiv(g.ow), g.div_oh = FastDiv(g.oh), g.div_od = FastDiv(g.od);
  g.div_iw = FastDiv(g.iw), g.div_ih = FastDiv(g.ih), g.div_id = FastDiv(g.id);
  return g;
}

// How the r-tiles of a GEMM are split across grid.z (split-K): `splits` partial results of
// `tiles_per_split` tiles each, none empty.
struct SplitPlan {
  int tiles_per_split, splits;
};

// Splits `tiles` r-tiles only when the M x N grid (`blocks_mn` blocks) is under 4 blocks per SM
// of a device with `multiprocessors` SMs (two resident, two waves), and so that each split keeps
// at least 8 r-tiles: the partial writes stay small against the math.
inline SplitPlan split_k(int64_t tiles, int64_t blocks_mn, int multiprocessors) {
  tiles = tiles > 1 ? tiles : 1;
  const int64_t target = 4 * int64_t(multiprocessors);
  const int64_t wanted = (target + blocks_mn - 1) / blocks_mn, most = (tiles + 7) / 8;
  const int64_t splits = wanted < 1 ? 1 : wanted > most ? most : wanted;
  const int64_t tiles_per_split = (tiles + splits - 1) / splits;
  return {int(tiles_per_split), int((tiles + tiles_per_split - 1) / tiles_per_split)};
}

}  // namespace cu3d::cuda::igemm
