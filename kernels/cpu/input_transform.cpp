#include "kernels/cpu/input_transform.h"

#include "kernels/error.h"

namespace cu3d::cpu {

template <typename T>
void input_transform(const InputTransformShape& s, const uint8_t* x, const int32_t* crops,
                     const uint8_t* flips, const T* mean, T scale, T* y) {
  CU3D_CHECK(s.out_h <= s.h && s.out_w <= s.w,
             "input_transform: crop {}x{} is larger than the frames {}x{}", s.out_h, s.out_w, s.h,
             s.w);
  for (int n = 0; n < s.n; ++n) {
    const int y0 = crops[2 * n], x0 = crops[2 * n + 1];
    CU3D_CHECK(y0 >= 0 && x0 >= 0 && y0 + s.out_h <= s.h && x0 + s.out_w <= s.w,
               "input_transform: clip {}'s crop {}x{} at ({}, {}) leaves the {}x{} frames", n,
               s.out_h, s.out_w, y0, x0, s.h, s.w);
  }
  const int c = s.c;
#pragma omp parallel for collapse(2) schedule(static) if (s.output_size() >= (1 << 15))
  for (int n = 0; n < s.n; ++n)
    for (int t = 0; t < s.d; ++t) {
      const bool flip = flips[n] != 0;
      const int y0 = crops[2 * n], x0 = crops[2 * n + 1];
      T* out = y + (int64_t(n) * s.d + t) * s.out_h * s.out_w * c;
      for (int i = 0; i < s.out_h; ++i) {
        const uint8_t* row = x + ((int64_t(n) * s.d + t) * s.h + y0 + i) * s.w * c;
        for (int j = 0; j < s.out_w; ++j) {
          const uint8_t* px = row + int64_t(flip ? x0 + s.out_w - 1 - j : x0 + j) * c;
          for (int ch = 0; ch < c; ++ch)
            *out++ = (T(px[ch]) - (mean ? mean[ch] : T(0))) * scale;
        }
      }
    }
}

template void input_transform<float>(const InputTransformShape&, const uint8_t*, const int32_t*,
                                     const uint8_t*, const float*, float, float*);
template void input_transform<double>(const InputTransformShape&, const uint8_t*, const int32_t*,
                                      const uint8_t*, const double*, double, double*);

}  // namespace cu3d::cpu
