#include "kernels/shapes.h"

#include <algorithm>

namespace cu3d {
namespace {

// Resolves padding and output size along one axis.
void resolve_axis(int in, int k, int stride, Padding padding, int explicit_pad, bool ceil_mode,
                  int* before, int* after, int* out) {
  CU3D_CHECK(in > 0 && k > 0 && stride > 0,
             "window axis needs positive sizes, got input {}, window {}, stride {}", in, k, stride);
  switch (padding) {
    case Padding::same:
      same_padding(in, k, stride, before, after);
      break;
    case Padding::valid:
      *before = *after = 0;
      break;
    case Padding::explicit_:
      CU3D_CHECK(explicit_pad >= 0, "padding must be >= 0, got {}", explicit_pad);
      *before = *after = explicit_pad;
      break;
  }
  *out = window_output_size(in, k, stride, *before, *after, ceil_mode);
}

}  // namespace

Conv3dShape Conv3dShape::make(int n, Dims3 in, int c, int k, Dims3 kernel, Dims3 stride,
                              Padding padding, Dims3 pad) {
  CU3D_CHECK(n > 0 && c > 0 && k > 0, "conv3d needs positive batch/channels, got n={} c={} k={}", n,
             c, k);
  Conv3dShape s;
  s.n = n, s.c = c, s.k = k, s.in = in, s.kernel = kernel, s.stride = stride;
  resolve_axis(in.d, kernel.d, stride.d, padding, pad.d, false, &s.pad_before.d, &s.pad_after.d,
               &s.out.d);
  resolve_axis(in.h, kernel.h, stride.h, padding, pad.h, false, &s.pad_before.h, &s.pad_after.h,
               &s.out.h);
  resolve_axis(in.w, kernel.w, stride.w, padding, pad.w, false, &s.pad_before.w, &s.pad_after.w,
               &s.out.w);
  return s;
}

Pool3dShape Pool3dShape::make(int n, Dims3 in, int c, Dims3 window, Dims3 stride, Padding padding,
                              Dims3 pad, bool ceil_mode) {
  CU3D_CHECK(n > 0 && c > 0, "pool3d needs positive batch/channels, got n={} c={}", n, c);
  Pool3dShape s;
  s.n = n, s.c = c, s.in = in, s.window = window, s.stride = stride;
  resolve_axis(in.d, window.d, stride.d, padding, pad.d, ceil_mode, &s.pad_before.d, &s.pad_after.d,
               &s.out.d);
  resolve_axis(in.h, window.h, stride.h, padding, pad.h, ceil_mode, &s.pad_before.h, &s.pad_after.h,
               &s.out.h);
  resolve_axis(in.w, window.w, stride.w, padding, pad.w, ceil_mode, &s.pad_before.w, &s.pad_after.w,
               &s.out.w);
  return s;
}

bool bwd_data_is_forward(const Conv3dShape& s) {
  auto within = [](int before, int after, int kernel) {
    return before >= 0 && after >= 0 && before < kernel && after < kernel;
  };
  return s.stride == Dims3{1, 1, 1} && within(s.pad_before.d, s.pad_after.d, s.kernel.d) &&
         within(s.pad_before.h, s.pad_after.h, s.kernel.h) &&
         within(s.pad_before.w, s.pad_after.w, s.kernel.w);
}

Conv3dShape bwd_data_as_forward(const Conv3dShape& s) {
  auto mirror = [&](const Dims3& pad) {
    return Dims3{s.kernel.d - 1 - pad.d, s.kernel.h - 1 - pad.h, s.kernel.w - 1 - pad.w};
  };
  Conv3dShape d = s;
  d.in = s.out, d.out = s.in, d.c = s.k, d.k = s.c;
  d.pad_before = mirror(s.pad_before), d.pad_after = mirror(s.pad_after);
  return d;
}

}  // namespace cu3d
