#include "kernels/cpu/pool3d.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace cu3d::cpu {
namespace {

// Input range [lo, hi) of the window of output `o` along one axis (padding clipped away).
struct Range {
  int lo, hi;
};
Range window_range(int o, int stride, int pad_before, int window, int in) {
  const int start = o * stride - pad_before;
  return {std::max(0, start), std::min(in, start + window)};
}

// Below ~64 K window reads (~20 us) a pool runs on one thread: waking a second costs more.
constexpr int64_t kReadsPerThread = 1 << 16;

bool worth_threads(const Pool3dShape& s) {
  return s.output_size() * s.window.d * s.window.h * s.window.w >= kReadsPerThread;
}

// Every window must hold at least one input element, or its max would be undefined.
void check_windows(const Pool3dShape& s) {
  const auto axis_ok = [](int in, int window, int stride, int pad_before, int out) {
    return pad_before < window && (out - 1) * stride - pad_before < in;
  };
  CU3D_CHECK(axis_ok(s.in.d, s.window.d, s.stride.d, s.pad_before.d, s.out.d) &&
                 axis_ok(s.in.h, s.window.h, s.stride.h, s.pad_before.h, s.out.h) &&
                 axis_ok(s.in.w, s.window.w, s.stride.w, s.pad_before.w, s.out.w),
             "maxpool3d: window {}x{}x{} stride {}x{}x{} padding before {}x{}x{} on input "
             "{}x{}x{} gives {}x{}x{} outputs, some of whose windows lie entirely in the padding; "
             "use padding smaller than the window",
             s.window.d, s.window.h, s.window.w, s.stride.d, s.stride.h, s.stride.w, s.pad_before.d,
             s.pad_before.h, s.pad_before.w, s.in.d, s.in.h, s.in.w, s.out.d, s.out.h, s.out.w);
}

// The running max update shared by every version: NaN propagates.
template <typename T>
T max_step(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// Calls f(x_offset) for each input position (as an offset of its c-vector) in the window of
// output (n, od, oh, ow), in d, h, w order.
template <typename F>
void for_each_in_window(const Pool3dShape& s, int n, int od, int oh, int ow, F&& f) {
  const Range rd = window_range(od, s.stride.d, s.pad_before.d, s.window.d, s.in.d);
  const Range rh = window_range(oh, s.stride.h, s.pad_before.h, s.window.h, s.in.h);
  const Range rw = window_range(ow, s.stride.w, s.pad_before.w, s.window.w, s.in.w);
  for (int id = rd.lo; id < rd.hi; ++id)
    for (int ih = rh.lo; ih < rh.hi; ++ih)
      for (int iw = rw.lo; iw < rw.hi; ++iw)
        f((((int64_t(n) * s.in.d + id) * s.in.h + ih) * s.in.w + iw) * s.c);
}

int64_t out_offset(const Pool3dShape& s, int n, int od, int oh, int ow) {
  return (((int64_t(n) * s.out.d + od) * s.out.h + oh) * s.out.w + ow) * s.c;
}

// Whether the windows tile the input exactly (window == stride, no padding, no remainder) along
// every axis: then each input element lies in exactly one window and backward writes dx once,
// with no zero fill first and no read-modify-write (C3D's pool1-pool4 and the Keras models'
// pools; the fill and the read back were 2/3 of the bytes the backward moved).
bool windows_tile_input(const Pool3dShape& s) {
  const auto axis = [](int in, int window, int stride, int pad_before, int out) {
    return window == stride && pad_before == 0 && out * stride == in;
  };
  return axis(s.in.d, s.window.d, s.stride.d, s.pad_before.d, s.out.d) &&
         axis(s.in.h, s.window.h, s.stride.h, s.pad_before.h, s.out.h) &&
         axis(s.in.w, s.window.w, s.stride.w, s.pad_before.w, s.out.w);
}

// Sends the gradient of output (n, od, oh, ow) to the first maximum of its window, all c
// channels at once: the channel loop is innermost and contiguous, and `pending` (c flags, 1 for
// the channels whose maximum has not been met yet) is of type T so that the loop is one
// branch-free vector select per element. `Assign`: the window's dx elements are written (every
// one of them, zero where no gradient goes) instead of accumulated into a zeroed dx.
template <bool Assign, typename T>
void pool_bwd_position(const Pool3dShape& s, const T* x, const T* y, const T* dy, int n, int od,
                       int oh, int ow, T* pending, T* dx) {
  const int64_t yo = out_offset(s, n, od, oh, ow);
  const T *yr = y + yo, *dyr = dy + yo;
  std::fill(pending, pending + s.c, T(1));
  for_each_in_window(s, n, od, oh, ow, [&](int64_t xo) {
    const T* xr = x + xo;
    T* dxr = dx + xo;
#pragma omp simd
    for (int c = 0; c < s.c; ++c) {
      const bool hit = pending[c] != T(0) && xr[c] == yr[c];
      const T g = hit ? dyr[c] : T(0);
      dxr[c] = Assign ? g : dxr[c] + g;
      pending[c] = hit ? T(0) : pending[c];
    }
  });
}

// One pass of the backward over the output lines of one colour class (see maxpool3d_bwd).
template <bool Assign, typename T>
void pool_bwd_lines(const Pool3dShape& s, const T* x, const T* y, const T* dy, int cd, int ch,
                    int period_d, int period_h, T* dx) {
  const int lines_d = (s.out.d - cd + period_d - 1) / period_d;
  const int lines_h = (s.out.h - ch + period_h - 1) / period_h;
  const int64_t lines = int64_t(s.n) * lines_d * lines_h;
#pragma omp parallel if (worth_threads(s))
  {
    std::vector<T> pending(s.c);
#pragma omp for schedule(static)
    for (int64_t line = 0; line < lines; ++line) {
      const int oh = ch + period_h * int(line % lines_h);
      const int od = cd + period_d * int(line / lines_h % lines_d);
      const int n = int(line / lines_h / lines_d);
      for (int ow = 0; ow < s.out.w; ++ow)
        pool_bwd_position<Assign>(s, x, y, dy, n, od, oh, ow, pending.data(), dx);
    }
  }
}

}  // namespace

template <typename T>
void maxpool3d_fwd(const Pool3dShape& s, const T* x, T* y) {
  check_windows(s);
  const int64_t lines = int64_t(s.n) * s.out.d * s.out.h;
#pragma omp parallel for schedule(static) if (worth_threads(s))
  for (int64_t line = 0; line < lines; ++line) {
    const int oh = int(line % s.out.h), od = int(line / s.out.h % s.out.d);
    const int n = int(line / s.out.h / s.out.d);
    for (int ow = 0; ow < s.out.w; ++ow) {
      T* yo = y + out_offset(s, n, od, oh, ow);
      std::fill(yo, yo + s.c, -std::numeric_limits<T>::infinity());
      // The c loop is innermost and contiguous in x and y, so it vectorizes.
      for_each_in_window(s, n, od, oh, ow, [&](int64_t xo) {
        for (int c = 0; c < s.c; ++c)
          yo[c] = max_step(yo[c], x[xo + c]);
      });
    }
  }
}

template <typename T>
void maxpool3d_bwd(const Pool3dShape& s, const T* x, const T* y, const T* dy, T* dx) {
  check_windows(s);
  if (windows_tile_input(s)) {
    pool_bwd_lines<true>(s, x, y, dy, 0, 0, 1, 1, dx);
    return;
  }
  std::fill(dx, dx + s.input_size(), T(0));
  // Work items are output lines (n, od, oh), as in the forward. Windows of lines `period` apart
  // along an axis never overlap, so the lines are visited in period.d * period.h colour classes
  // (od % period.d, oh % period.h): within a class no two items write the same dx element. For
  // C3D's pools (window <= stride) there is one class and no extra pass.
  const int period_d = (s.window.d + s.stride.d - 1) / s.stride.d;
  const int period_h = (s.window.h + s.stride.h - 1) / s.stride.h;
  for (int cd = 0; cd < period_d; ++cd)
    for (int ch = 0; ch < period_h; ++ch)
      pool_bwd_lines<false>(s, x, y, dy, cd, ch, period_d, period_h, dx);
}

template <typename T>
void maxpool3d_relu_bwd(const Pool3dShape& s, const T* x, const T* y, const T* dy, T* dx) {
  std::vector<T> masked(s.output_size());  // |y|: an eighth of |x| for a 2x2x2 pool
#pragma omp parallel for simd schedule(static) if (worth_threads(s))
  for (int64_t i = 0; i < s.output_size(); ++i)
    masked[i] = y[i] > T(0) ? dy[i] : T(0);
  maxpool3d_bwd(s, x, y, masked.data(), dx);
}

template <typename T>
void maxpool3d_fwd_naive(const Pool3dShape& s, const T* x, T* y) {
  check_windows(s);
  for (int n = 0; n < s.n; ++n)
    for (int od = 0; od < s.out.d; ++od)
      for (int oh = 0; oh < s.out.h; ++oh)
        for (int ow = 0; ow < s.out.w; ++ow)
          for (int c = 0; c < s.c; ++c) {
            T m = -std::numeric_limits<T>::infinity();
            for_each_in_window(s, n, od, oh, ow, [&](int64_t xo) { m = max_step(m, x[xo + c]); });
            y[out_offset(s, n, od, oh, ow) + c] = m;
          }
}

template <typename T>
void maxpool3d_bwd_naive(const Pool3dShape& s, const T* x, const T* y, const T* dy, T* dx) {
  check_windows(s);
  std::fill(dx, dx + s.input_size(), T(0));
  for (int n = 0; n < s.n; ++n)
    for (int od = 0; od < s.out.d; ++od)
      for (int oh = 0; oh < s.out.h; ++oh)
        for (int ow = 0; ow < s.out.w; ++ow)
          for (int c = 0; c < s.c; ++c) {
            const int64_t yo = out_offset(s, n, od, oh, ow) + c;
            bool found = false;
            for_each_in_window(s, n, od, oh, ow, [&](int64_t xo) {
              if (found || x[xo + c] != y[yo]) return;
              dx[xo + c] += dy[yo];
              found = true;
            });
          }
}

#define CU3D_INSTANTIATE_POOL3D(T)                                                           \
  template void maxpool3d_fwd<T>(const Pool3dShape&, const T*, T*);                          \
  template void maxpool3d_bwd<T>(const Pool3dShape&, const T*, const T*, const T*, T*);      \
  template void maxpool3d_relu_bwd<T>(const Pool3dShape&, const T*, const T*, const T*, T*); \
  template void maxpool3d_fwd_naive<T>(const Pool3dShape&, const T*, T*);                    \
  template void maxpool3d_bwd_naive<T>(const Pool3dShape&, const T*, const T*, const T*, T*);
CU3D_INSTANTIATE_POOL3D(float)
CU3D_INSTANTIATE_POOL3D(double)
#undef CU3D_INSTANTIATE_POOL3D

}  // namespace cu3d::cpu
