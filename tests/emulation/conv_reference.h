// The conv tests' reference: operands rounded to a precision, and conv3d's three passes in
// double, independent of kernels/cpu's fast paths (which are float only).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/precision.h"
#include "kernels/shapes.h"

namespace cu3d::emu_test {

// f rounded as the kernels' operands are: bf16 to nearest even, tf32 to nearest with ties away
// (cvt.rna); fp32 unchanged. For finite values.
inline float round_to(float f, Precision p) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (p == Precision::bf16) u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  if (p == Precision::tf32) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// y = conv(x, w) + bias and, when dy is given, dx = conv_bwd_data(dy, w), dw =
// conv_bwd_filter(x, dy) and dbias: one visit of every (output position, tap, input channel,
// filter) feeds all three.
struct ConvReference {
  std::vector<double> y, dx, dw, dbias;
};

inline ConvReference conv_reference(const Conv3dShape& s, const std::vector<float>& x,
                                    const std::vector<float>& w, const std::vector<float>& bias,
                                    const std::vector<float>& dy = {}) {
  const bool backward = !dy.empty();
  ConvReference r;
  r.y.assign(s.output_size(), 0.0);
  if (backward) {
    r.dx.assign(s.input_size(), 0.0);
    r.dw.assign(s.filter_size(), 0.0);
    r.dbias.assign(s.k, 0.0);
  }
  const int taps = s.kernel.d * s.kernel.h * s.kernel.w;
  for (int64_t o = 0; o < s.output_size() / s.k; ++o) {
    const int ox = o % s.out.w, oy = o / s.out.w % s.out.h, oz = o / s.out.w / s.out.h % s.out.d;
    const int b = o / s.out.w / s.out.h / s.out.d;
    for (int k = 0; k < s.k; ++k) {
      r.y[o * s.k + k] = bias[k];
      if (backward) r.dbias[k] += dy[o * s.k + k];
    }
    for (int tap = 0; tap < taps; ++tap) {
      const int tx = tap % s.kernel.w, ty = tap / s.kernel.w % s.kernel.h,
                tz = tap / s.kernel.w / s.kernel.h;
      const int z = oz * s.stride.d - s.pad_before.d + tz,
                yy = oy * s.stride.h - s.pad_before.h + ty,
                xx = ox * s.stride.w - s.pad_before.w + tx;
      if (z < 0 || yy < 0 || xx < 0 || z >= s.in.d || yy >= s.in.h || xx >= s.in.w) continue;
      const int64_t i = ((int64_t(b) * s.in.d + z) * s.in.h + yy) * s.in.w + xx;
      for (int k = 0; k < s.k; ++k)
        for (int c = 0; c < s.c; ++c) {
          const int64_t wi = (int64_t(k) * taps + tap) * s.c + c;
          r.y[o * s.k + k] += double(x[i * s.c + c]) * w[wi];
          if (!backward) continue;
          r.dx[i * s.c + c] += double(dy[o * s.k + k]) * w[wi];
          r.dw[wi] += double(x[i * s.c + c]) * dy[o * s.k + k];
        }
    }
  }
  return r;
}

}  // namespace cu3d::emu_test
