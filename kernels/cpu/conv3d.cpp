#include "kernels/cpu/conv3d.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace cu3d::cpu {
namespace {

// One thread's column tile is kept near 1 MiB so that it, plus the panels OpenBLAS packs from
// it and from the filter, stays in a 2 MiB L2 while the GEMM streams over it.
constexpr int64_t kTileBytes = int64_t(1) << 20;
// Below ~64 rows the GEMM spends a visible share of its time re-packing the filter (the B
// operand, T*c x k) for every tile; above it the packing is < 2 % of the multiply.
constexpr int64_t kMinTileRows = 64;

// Bound on bwd-filter's per-thread partial sums of dw, which cost one filter per thread.
constexpr int64_t kPartialBytes = int64_t(256) << 20;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// A thread is worth waking only for at least ~4 MFLOP (~30 us on one core); below that the
// fork/join and wake-up cost more than they save (the small convs of gradient checks).
constexpr double kFlopsPerThread = 4e6;

int threads_for(const Conv3dShape& s) {
  return int(
      std::clamp<int64_t>(int64_t(2.0 * s.macs() / kFlopsPerThread), 1, omp_get_max_threads()));
}

// Rows per tile for `rows` rows of `row_len` elements: as many as fit kTileBytes, at least
// kMinTileRows, but no more than an even share per thread so that every thread has work.
int64_t tile_rows(int64_t rows, int64_t row_len, int64_t elem_bytes, int threads) {
  const int64_t fit = std::max<int64_t>(kMinTileRows, kTileBytes / (row_len * elem_bytes));
  return std::max<int64_t>(1, std::min(fit, ceil_div(rows, threads)));
}

// A position (n, d, h, w) walked in row-major order over extents (·, ed, eh, ew).
struct Cursor {
  int n, d, h, w;
  int ed, eh, ew;

  Cursor(int64_t index, int ed_, int eh_, int ew_) : ed(ed_), eh(eh_), ew(ew_) {
    w = int(index % ew), index /= ew;
    h = int(index % eh), index /= eh;
    d = int(index % ed), n = int(index / ed);
  }
  void next() {
    if (++w < ew) return;
    w = 0;
    if (++h < eh) return;
    h = 0;
    if (++d < ed) return;
    d = 0, ++n;
  }
};

template <typename T>
void fill_zero(T* p, int64_t count) {
  std::fill(p, p + count, T(0));
}

// Writes the column row of output position `o`: for each tap (td, th, tw) the c input values it
// reads, zero where the tap falls in the padding. Channels-last makes the kernel.w taps of one
// (td, th) a single contiguous run of x (kernel.w * c values), so a row is kernel.d * kernel.h
// copies; at c = 3 (conv1a) that is 9 runs of 9 values rather than 27 runs of 3.
template <typename T>
void vol2col_row(const Conv3dShape& s, const T* x, const Cursor& o, T* row) {
  const int64_t run = int64_t(s.kernel.w) * s.c;
  const int iw0 = o.w * s.stride.w - s.pad_before.w;
  const int tw_lo = std::max(0, -iw0), tw_hi = std::min(s.kernel.w, s.in.w - iw0);
  for (int td = 0; td < s.kernel.d; ++td) {
    const int id = o.d * s.stride.d - s.pad_before.d + td;
    for (int th = 0; th < s.kernel.h; ++th, row += run) {
      const int ih = o.h * s.stride.h - s.pad_before.h + th;
      if (id < 0 || id >= s.in.d || ih < 0 || ih >= s.in.h || tw_lo >= tw_hi) {
        fill_zero(row, run);
        continue;
      }
      const T* src =
          x + (((int64_t(o.n) * s.in.d + id) * s.in.h + ih) * s.in.w + iw0 + tw_lo) * s.c;
      fill_zero(row, int64_t(tw_lo) * s.c);
      std::memcpy(row + int64_t(tw_lo) * s.c, src, sizeof(T) * (tw_hi - tw_lo) * s.c);
      fill_zero(row + int64_t(tw_hi) * s.c, int64_t(s.kernel.w - tw_hi) * s.c);
    }
  }
}

// Fills `rows` column rows starting at output position `first`.
template <typename T>
void vol2col_tile(const Conv3dShape& s, const T* x, int64_t first, int64_t rows, T* col) {
  const int64_t row_len = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w * s.c;
  Cursor o(first, s.out.d, s.out.h, s.out.w);
  for (int64_t r = 0; r < rows; ++r, o.next())
    vol2col_row(s, x, o, col + r * row_len);
}

// ---- bwd-data: gather formulation ---------------------------------------------------------
// Along one axis, input index i receives gradient from tap t through output o when
// i + pad_before = stride*o + t. Writing i = stride*q + r - pad_before with phase r < stride,
// the contributing taps are t = r + stride*m (m < taps) with o = q - m. Grouping input
// positions by phase gives every row of a group the same taps, so dx for a group is one GEMM
// with no multiplications by structural zeros (stride 2 would otherwise waste 7/8 of a 3D
// conv's work) and each dx row written by exactly one thread (no scatter, no races).
struct AxisPhase {
  int r = 0, taps = 0, q_lo = 0, count = 0, stride = 1, pad = 0, out = 0;

  AxisPhase(int in, int k, int stride_, int pad_, int out_, int r_)
      : r(r_), stride(stride_), pad(pad_), out(out_) {
    taps = r < k ? int(ceil_div(k - r, stride)) : 0;
    q_lo = int(ceil_div(pad - r, stride));  // >= 0 because r < stride
    count = std::max(0, int(ceil_div(in + pad - r, stride)) - q_lo);
  }
  int input(int q) const { return stride * q + r - pad; }
  // Gather-row slot j holds tap m = taps-1-j, i.e. output q-taps+1+j: outputs ascend with j,
  // so the slots of one (d, h) pair are one contiguous run of dy.
  int output(int q, int j) const { return q - taps + 1 + j; }
  int tap(int j) const { return r + stride * (taps - 1 - j); }
};

struct Phase {
  AxisPhase d, h, w;
  int64_t taps() const { return int64_t(d.taps) * h.taps * w.taps; }
  int64_t rows(int n) const { return int64_t(n) * d.count * h.count * w.count; }
};

std::vector<Phase> make_phases(const Conv3dShape& s) {
  std::vector<Phase> phases;
  for (int rd = 0; rd < s.stride.d; ++rd)
    for (int rh = 0; rh < s.stride.h; ++rh)
      for (int rw = 0; rw < s.stride.w; ++rw)
        phases.push_back({AxisPhase(s.in.d, s.kernel.d, s.stride.d, s.pad_before.d, s.out.d, rd),
                          AxisPhase(s.in.h, s.kernel.h, s.stride.h, s.pad_before.h, s.out.h, rh),
                          AxisPhase(s.in.w, s.kernel.w, s.stride.w, s.pad_before.w, s.out.w, rw)});
  return phases;
}

// The filter of one phase as the (taps*k, c) matrix whose row (jd, jh, jw, k) is
// w[k, tap(jd), tap(jh), tap(jw), :], in gather-row slot order.
template <typename T>
void phase_filter(const Conv3dShape& s, const Phase& p, const T* w, T* wp) {
  for (int jd = 0; jd < p.d.taps; ++jd)
    for (int jh = 0; jh < p.h.taps; ++jh)
      for (int jw = 0; jw < p.w.taps; ++jw)
        for (int k = 0; k < s.k; ++k, wp += s.c) {
          const int64_t tap =
              (int64_t(p.d.tap(jd)) * s.kernel.h + p.h.tap(jh)) * s.kernel.w + p.w.tap(jw);
          std::memcpy(wp, w + (int64_t(k) * s.kernel.d * s.kernel.h * s.kernel.w + tap) * s.c,
                      sizeof(T) * s.c);
        }
}

// Gather row of phase position q = (n, qd, qh, qw): the k gradient values of every output that
// reads this input position, zero where that output does not exist.
template <typename T>
void dy2col_row(const Conv3dShape& s, const Phase& p, const T* dy, const Cursor& q, T* row) {
  const int64_t run = int64_t(p.w.taps) * s.k;
  const int ow0 = p.w.output(q.w, 0);
  const int jw_lo = std::max(0, -ow0), jw_hi = std::min(p.w.taps, s.out.w - ow0);
  for (int jd = 0; jd < p.d.taps; ++jd) {
    const int od = p.d.output(q.d, jd);
    for (int jh = 0; jh < p.h.taps; ++jh, row += run) {
      const int oh = p.h.output(q.h, jh);
      if (od < 0 || od >= s.out.d || oh < 0 || oh >= s.out.h || jw_lo >= jw_hi) {
        fill_zero(row, run);
        continue;
      }
      const T* src =
          dy + (((int64_t(q.n) * s.out.d + od) * s.out.h + oh) * s.out.w + ow0 + jw_lo) * s.k;
      fill_zero(row, int64_t(jw_lo) * s.k);
      std::memcpy(row + int64_t(jw_lo) * s.k, src, sizeof(T) * (jw_hi - jw_lo) * s.k);
      fill_zero(row + int64_t(jw_hi) * s.k, int64_t(p.w.taps - jw_hi) * s.k);
    }
  }
}

// One unit of bwd-data work: rows [first, first + rows) of phase `phase`.
struct DataTile {
  int phase;
  int64_t first, rows;
};

// dx for one tile: gather rows, one GEMM into `out`, then copy each row to its dx position
// (phase positions are `stride` apart, so GEMM cannot write dx in place unless stride is 1).
template <typename T>
void bwd_data_tile(const Conv3dShape& s, const Phase& p, const T* wp, const T* dy,
                   const DataTile& t, std::vector<T>& col, std::vector<T>& out, T* dx) {
  const int64_t taps = p.taps();
  if (taps > 0) {
    const int64_t row_len = taps * s.k;
    col.resize(t.rows * row_len);
    out.resize(t.rows * s.c);
    Cursor q(t.first, p.d.count, p.h.count, p.w.count);
    for (int64_t r = 0; r < t.rows; ++r, q.next()) {
      Cursor qq = q;
      qq.d += p.d.q_lo, qq.h += p.h.q_lo, qq.w += p.w.q_lo;
      dy2col_row(s, p, dy, qq, col.data() + r * row_len);
    }
    gemm<T>(false, false, t.rows, s.c, row_len, T(1), col.data(), row_len, wp, s.c, T(0),
            out.data(), s.c);
  }
  Cursor q(t.first, p.d.count, p.h.count, p.w.count);
  for (int64_t r = 0; r < t.rows; ++r, q.next()) {
    const int id = p.d.input(q.d + p.d.q_lo), ih = p.h.input(q.h + p.h.q_lo),
              iw = p.w.input(q.w + p.w.q_lo);
    T* dst = dx + (((int64_t(q.n) * s.in.d + id) * s.in.h + ih) * s.in.w + iw) * s.c;
    if (taps > 0)
      std::memcpy(dst, out.data() + r * s.c, sizeof(T) * s.c);
    else
      fill_zero(dst, s.c);  // stride > kernel: no output reads this position
  }
}

}  // namespace

template <typename T>
void conv3d_fwd(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t rows = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  const int64_t row_len = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w * s.c;
  const int threads = threads_for(s);
  const int64_t tile = tile_rows(rows, row_len, sizeof(T), threads);
  const int64_t tiles = ceil_div(rows, tile);
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> col;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t first = t * tile, count = std::min(tile, rows - first);
      col.resize(count * row_len);
      vol2col_tile(s, x, first, count, col.data());
      T* yt = y + first * s.k;
      if (bias)
        for (int64_t r = 0; r < count; ++r)
          std::memcpy(yt + r * s.k, bias, sizeof(T) * s.k);
      gemm<T>(false, true, count, s.k, row_len, T(1), col.data(), row_len, w, row_len,
              bias ? T(1) : T(0), yt, s.k);
    }
  }
}

template <typename T>
void conv3d_bwd_data(const Conv3dShape& s, const T* dy, const T* w, T* dx) {
  const std::vector<Phase> phases = make_phases(s);
  std::vector<T> wp(s.filter_size());
  std::vector<int64_t> wp_offset;
  std::vector<DataTile> tiles;
  const int threads = threads_for(s);
  int64_t offset = 0;
  for (int i = 0; i < int(phases.size()); ++i) {
    const Phase& p = phases[i];
    phase_filter(s, p, w, wp.data() + offset);
    wp_offset.push_back(offset);
    offset += p.taps() * s.k * s.c;
    const int64_t rows = p.rows(s.n);
    const int64_t tile = tile_rows(rows, std::max<int64_t>(1, p.taps() * s.k), sizeof(T), threads);
    for (int64_t first = 0; first < rows; first += tile)
      tiles.push_back({i, first, std::min(tile, rows - first)});
  }
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> col, out;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < int64_t(tiles.size()); ++i) {
      const DataTile& t = tiles[i];
      bwd_data_tile(s, phases[t.phase], wp.data() + wp_offset[t.phase], dy, t, col, out, dx);
    }
  }
}

template <typename T>
void conv3d_bwd_filter(const Conv3dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const int64_t rows = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  const int64_t row_len = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w * s.c;
  const int64_t dw_size = s.filter_size();
  // One partial dw (+ dbias) per thread, summed in thread order at the end, so the result is the
  // same on every run with the same thread count. The partials are capped at kPartialBytes:
  // C3D's conv5 filters (28 MB in float) use at most 9 threads.
  const int64_t part_size = dw_size + s.k;
  const int threads =
      int(std::clamp<int64_t>(kPartialBytes / (part_size * int64_t(sizeof(T))), 1, threads_for(s)));
  const int64_t tile = tile_rows(rows, row_len, sizeof(T), threads);
  const int64_t tiles = ceil_div(rows, tile);
  std::vector<T> partial(threads * part_size, T(0));
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> col;
    T* part = partial.data() + omp_get_thread_num() * part_size;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t first = t * tile, count = std::min(tile, rows - first);
      col.resize(count * row_len);
      vol2col_tile(s, x, first, count, col.data());
      const T* dyt = dy + first * s.k;
      gemm<T>(true, false, s.k, row_len, count, T(1), dyt, s.k, col.data(), row_len, T(1), part,
              row_len);
      for (int64_t r = 0; r < count; ++r)
        for (int k = 0; k < s.k; ++k)
          part[dw_size + k] += dyt[r * s.k + k];
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < part_size; ++i) {
      T sum = 0;
      for (int th = 0; th < threads; ++th)
        sum += partial[th * part_size + i];
      if (i < dw_size)
        dw[i] = sum;
      else if (dbias)
        dbias[i - dw_size] = sum;
    }
  }
}

// ---- naive references -------------------------------------------------------------------------

namespace {

// Visits every (output position, tap) pair whose input position lies inside x, with the flat
// offsets of the x row (c values), the y row (k values) and the filter tap (stride c in w).
template <typename F>
void for_each_tap(const Conv3dShape& s, F&& f) {
  for (int n = 0; n < s.n; ++n)
    for (int od = 0; od < s.out.d; ++od)
      for (int oh = 0; oh < s.out.h; ++oh)
        for (int ow = 0; ow < s.out.w; ++ow)
          for (int td = 0; td < s.kernel.d; ++td)
            for (int th = 0; th < s.kernel.h; ++th)
              for (int tw = 0; tw < s.kernel.w; ++tw) {
                const int id = od * s.stride.d - s.pad_before.d + td;
                const int ih = oh * s.stride.h - s.pad_before.h + th;
                const int iw = ow * s.stride.w - s.pad_before.w + tw;
                if (id < 0 || id >= s.in.d || ih < 0 || ih >= s.in.h || iw < 0 || iw >= s.in.w)
                  continue;
                const int64_t xi = (((int64_t(n) * s.in.d + id) * s.in.h + ih) * s.in.w + iw);
                const int64_t yi = (((int64_t(n) * s.out.d + od) * s.out.h + oh) * s.out.w + ow);
                const int64_t tap = (int64_t(td) * s.kernel.h + th) * s.kernel.w + tw;
                f(xi * s.c, yi * s.k, tap);
              }
}

}  // namespace

template <typename T>
void conv3d_fwd_naive(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t taps = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w;
  const int64_t positions = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  for (int64_t p = 0; p < positions; ++p)
    for (int k = 0; k < s.k; ++k)
      y[p * s.k + k] = bias ? bias[k] : T(0);
  for_each_tap(s, [&](int64_t xo, int64_t yo, int64_t tap) {
    for (int k = 0; k < s.k; ++k)
      for (int c = 0; c < s.c; ++c)
        y[yo + k] += x[xo + c] * w[(k * taps + tap) * s.c + c];
  });
}

template <typename T>
void conv3d_bwd_data_naive(const Conv3dShape& s, const T* dy, const T* w, T* dx) {
  const int64_t taps = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w;
  std::fill(dx, dx + s.input_size(), T(0));
  for_each_tap(s, [&](int64_t xo, int64_t yo, int64_t tap) {
    for (int k = 0; k < s.k; ++k)
      for (int c = 0; c < s.c; ++c)
        dx[xo + c] += dy[yo + k] * w[(k * taps + tap) * s.c + c];
  });
}

template <typename T>
void conv3d_bwd_filter_naive(const Conv3dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const int64_t taps = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w;
  std::fill(dw, dw + s.filter_size(), T(0));
  for_each_tap(s, [&](int64_t xo, int64_t yo, int64_t tap) {
    for (int k = 0; k < s.k; ++k)
      for (int c = 0; c < s.c; ++c)
        dw[(k * taps + tap) * s.c + c] += dy[yo + k] * x[xo + c];
  });
  if (!dbias) return;
  const int64_t positions = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  std::fill(dbias, dbias + s.k, T(0));
  for (int64_t p = 0; p < positions; ++p)
    for (int k = 0; k < s.k; ++k)
      dbias[k] += dy[p * s.k + k];
}

#define CU3D_INSTANTIATE_CONV3D(T)                                                         \
  template void conv3d_fwd<T>(const Conv3dShape&, const T*, const T*, const T*, T*);       \
  template void conv3d_bwd_data<T>(const Conv3dShape&, const T*, const T*, T*);            \
  template void conv3d_bwd_filter<T>(const Conv3dShape&, const T*, const T*, T*, T*);      \
  template void conv3d_fwd_naive<T>(const Conv3dShape&, const T*, const T*, const T*, T*); \
  template void conv3d_bwd_data_naive<T>(const Conv3dShape&, const T*, const T*, T*);      \
  template void conv3d_bwd_filter_naive<T>(const Conv3dShape&, const T*, const T*, T*, T*);
CU3D_INSTANTIATE_CONV3D(float)
CU3D_INSTANTIATE_CONV3D(double)
#undef CU3D_INSTANTIATE_CONV3D

}  // namespace cu3d::cpu
