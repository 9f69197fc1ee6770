#include "kernels/cpu/conv3d.h"

#include <omp.h>

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/activation.h"
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

bool unit_stride(const Conv3dShape& s) {
  return s.stride.d == 1 && s.stride.h == 1 && s.stride.w == 1;
}

// dx for one tile: gather rows, one GEMM into `out`, then copy each row to its dx position
// (phase positions are `stride` apart). At stride 1 the single phase's rows are dx's own rows in
// order, so the GEMM writes dx in place: no `out` buffer and no copy (keras3d's conv1b moves
// 42 MB less per step at batch 32).
template <typename T>
void bwd_data_tile(const Conv3dShape& s, const Phase& p, const T* wp, const T* dy,
                   const DataTile& t, std::vector<T>& col, std::vector<T>& out, T* dx) {
  const int64_t taps = p.taps();
  const bool in_place = unit_stride(s);
  if (taps > 0) {
    const int64_t row_len = taps * s.k;
    col.resize(t.rows * row_len);
    if (!in_place) out.resize(t.rows * s.c);
    Cursor q(t.first, p.d.count, p.h.count, p.w.count);
    for (int64_t r = 0; r < t.rows; ++r, q.next()) {
      Cursor qq = q;
      qq.d += p.d.q_lo, qq.h += p.h.q_lo, qq.w += p.w.q_lo;
      dy2col_row(s, p, dy, qq, col.data() + r * row_len);
    }
    T* target = in_place ? dx + t.first * s.c : out.data();
    gemm<T>(false, false, t.rows, s.c, row_len, T(1), col.data(), row_len, wp, s.c, T(0), target,
            s.c);
  }
  if (in_place) return;
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

// ---- stride 1: shifted views instead of vol2col ------------------------------------------------
// A stride-1 conv is a sum over its T taps of GEMMs on shifted views of the input:
//   y[p, :] += x[p + offset(tap), :] · w[:, tap, :]ᵀ     (one GEMM of depth c per tap)
// With the input zero-padded in h and w to (Hp, Wp) and the output rows laid out with the same
// row pitch Wp (row r = oh·Wp + ow; the Wp - OW rows past each output line are computed and
// dropped), the view of tap (td, th, tw) is one contiguous run of rows of the padded input,
// starting (td·Hb + th)·Wp + tw rows in: a plain (m × c) matrix with lda = c. So there is no
// column matrix at all; the only copies are the padded input band (about KD·c values per output
// row, against vol2col's T·c: 3× fewer bytes at 3×3×3) and the output rows.
// Cost: Wp/OW more rows than needed (34/32 for keras3d conv1b, 30/28 for conv2a).
// In float on AVX-512 the products are register-blocked micro-kernels that read the views in
// place (an implicit GEMM: OpenBLAS, given a view per tap, packs it again for every tap, which
// copies as many bytes as vol2col did); in double they are one OpenBLAS GEMM per tap (depth c).
// bwd-data at stride 1 is the same forward on dy (bwd_data_as_forward), bwd-filter the transposed
// product per tap, dwᵀ[tap] += view(tap)ᵀ · dy (float only; double keeps vol2col).
// The KW taps of one (td, th) pair, a "tap row", have views that are consecutive rows of the
// padded band (tap tw starts tw rows, tw·c values, after tap tw = 0), so one view read KW·c
// values wide holds them all, and their filter rows (tap, c) = (tap_row·KW + tw)·c + c are
// consecutive too: the micro-kernels run over the KD·KH tap rows with depth KW·c (9 of depth 192
// at conv2a; 9 of depth 9 at conv1a, whose c = 3 alone was too shallow to be worth a loop).
// Work item: one (n, od) output plane, split into bands of bh output lines so that the band's
// output block (m × k) stays near kBandBytes (in L2 with the padded input band).
// Without the micro-kernels (double, or no AVX-512), one GEMM per tap is worth its call only
// from kShiftedMinChannels channels on; fewer go to the direct loops or vol2col.
constexpr int kShiftedMinChannels = 16;
constexpr int64_t kBandBytes = int64_t(512) << 10;
// The float micro-kernel's register blocks: R output rows x 2 vectors of 16 filters, 2R of the
// 32 AVX-512 registers as accumulators (+ 2 filter vectors + 1 broadcast): 24 or 28 independent
// FMA chains hide the 4-cycle latency at 2 FMAs per cycle, and each input value, broadcast once,
// feeds 2 FMAs. Blocks of 12 run over a band's padded row pitch, blocks of 14 within its output
// lines (see shifted_band_forward).
constexpr int kShiftedRows = 12;
constexpr int kShiftedLineRows = 14;
constexpr int kShiftedMaxRows = std::max(kShiftedRows, kShiftedLineRows);
// bwd-filter's register blocks: 12 or 8 channels (see filter_block_avx512).
constexpr int kFilterWideChannels = 12;
constexpr int kFilterNarrowChannels = 8;
constexpr int kShiftedLanes = 16;  // floats per AVX-512 vector; k is padded to a multiple

int64_t lanes_pad(int k) {
  return ceil_div(k, kShiftedLanes) * kShiftedLanes;
}

// Whether the register-blocked float micro-kernels below exist for T in this build.
template <typename T>
constexpr bool kMicroKernels =
#if defined(__AVX512F__)
    std::is_same_v<T, float>;
#else
    false;
#endif

template <typename T>
bool use_shifted(const Conv3dShape& s) {
  // Stride 1 and padding < kernel: the views' geometry, and what makes bwd-data such a conv too.
  return bwd_data_is_forward(s) && (kMicroKernels<T> || s.c >= kShiftedMinChannels);
}

// The band geometry of a shifted-view conv.
struct ShiftedBands {
  int64_t wp, bh, bands, items;  // padded row pitch, lines per band, bands per plane, work items

  explicit ShiftedBands(const Conv3dShape& s, int64_t elem_bytes) {
    wp = int64_t(s.in.w) + s.pad_before.w + s.pad_after.w;
    bh = std::clamp<int64_t>(kBandBytes / (wp * s.k * elem_bytes), 1, s.out.h);
    bands = ceil_div(s.out.h, bh);
    items = int64_t(s.n) * s.out.d * bands;
  }
  int64_t lines(int64_t band, const Conv3dShape& s) const {
    return std::min(bh, s.out.h - band * bh);
  }
  // Rows of the band's output block: the last line stops at OW (its view would run past the
  // padded input band otherwise).
  int64_t rows(int64_t lines, const Conv3dShape& s) const { return (lines - 1) * wp + s.out.w; }
  int64_t slab_lines(int64_t lines, const Conv3dShape& s) const { return lines + s.kernel.h - 1; }
};

// The zero-padded input that output lines [oh0, oh0 + lines) of plane (n, od) read:
// (KD, lines + KH - 1, Wp, c).
template <typename T>
void load_slab(const Conv3dShape& s, const ShiftedBands& b, const T* x, int n, int od, int64_t oh0,
               int64_t lines, std::vector<T>& slab) {
  const int64_t hb = b.slab_lines(lines, s), line = b.wp * s.c;
  // Zero slack: the forward micro-kernel's last row block runs up to kShiftedMaxRows - 1 rows past
  // m, bwd-filter's last channel block up to kFilterWideChannels - 1 values past a tap row's
  // depth.
  slab.assign(s.kernel.d * hb * line + kShiftedMaxRows * s.c + kFilterWideChannels, T(0));
  for (int td = 0; td < s.kernel.d; ++td) {
    const int id = od + td - s.pad_before.d;
    if (id < 0 || id >= s.in.d) continue;
    for (int64_t j = 0; j < hb; ++j) {
      const int64_t ih = oh0 + j - s.pad_before.h;
      if (ih < 0 || ih >= s.in.h) continue;
      const T* src = x + ((int64_t(n) * s.in.d + id) * s.in.h + ih) * s.in.w * s.c;
      std::copy_n(src, int64_t(s.in.w) * s.c,
                  slab.data() + (td * hb + j) * line + s.pad_before.w * s.c);
    }
  }
}

// Offset (in elements) within the slab of the views of tap row (td, th) = (tap_row / KH,
// tap_row % KH): its tap tw = 0.
int64_t tap_row_offset(const Conv3dShape& s, const ShiftedBands& b, int64_t hb, int64_t tap_row) {
  const int64_t th = tap_row % s.kernel.h, td = tap_row / s.kernel.h;
  return (td * hb + th) * b.wp * s.c;
}

// The tap rows of a band: their view offsets in the slab and their depth KW·c.
struct TapRows {
  std::vector<int64_t> offsets;
  int64_t depth;
  TapRows(const Conv3dShape& s, const ShiftedBands& b, int64_t hb)
      : offsets(int64_t(s.kernel.d) * s.kernel.h), depth(int64_t(s.kernel.w) * s.c) {
    for (int64_t r = 0; r < int64_t(offsets.size()); ++r)
      offsets[r] = tap_row_offset(s, b, hb, r);
  }
};

// Where a band's product goes: output line i of the band is y's line (n, od, oh0 + i); row r of
// the band's padded pitch is line r / wp, position r % wp, dropped when that is >= out.w.
struct BandOutput {
  int64_t wp, lines, ow, k;
  float* y;  // the band's first output line
  float* row(int64_t r) const {
    const int64_t line = r / wp, w = r % wp;
    return line < lines && w < ow ? y + (line * ow + w) * k : nullptr;
  }
};

#if defined(__AVX512F__)
// Lane mask of the first `valid` lanes of a vector (all 16 when valid >= 16, none when <= 0).
__mmask16 lanes_mask(int64_t valid) {
  return valid >= kShiftedLanes ? __mmask16(0xffff)
                                : __mmask16((1u << std::max<int64_t>(valid, 0)) - 1);
}

// Rows dst[0 .. R) (each null or k values of y, at column kb) = bias[kb ...] + the sum
// over the tap rows and their depth of the view rows times the filter: the implicit GEMM. It
// reads the views in place (row i of tap row t's view is a + offsets[t] + i·c, `depth` values)
// instead of having OpenBLAS pack each view again for every tap, which copied as many bytes as
// vol2col did. The accumulators start
// from the bias and are stored straight into y (masked to the k - kb filters that exist), so
// there is no output buffer to initialise and copy out; with `Relu`, through ReLU on the way.
template <int R, int V, bool Relu>
void shifted_block_avx512(const float* a, const TapRows& taps, int64_t c, const float* wt,
                          int64_t kpad, const float* bias, float* const* dst, int64_t valid) {
  __m512 acc[R][V];
  for (int v = 0; v < V; ++v) {
    const __m512 start = _mm512_loadu_ps(bias + v * kShiftedLanes);
    for (int i = 0; i < R; ++i)
      acc[i][v] = start;
  }
  for (size_t t = 0; t < taps.offsets.size(); ++t) {
    const float* at = a + taps.offsets[t];
    const float* bt = wt + int64_t(t) * taps.depth * kpad;
    for (int64_t j = 0; j < taps.depth; ++j) {
      __m512 wv[V];
      for (int v = 0; v < V; ++v)
        wv[v] = _mm512_loadu_ps(bt + j * kpad + v * kShiftedLanes);
      for (int i = 0; i < R; ++i) {
        const __m512 xv = _mm512_set1_ps(at[i * c + j]);
        for (int v = 0; v < V; ++v)
          acc[i][v] = _mm512_fmadd_ps(xv, wv[v], acc[i][v]);
      }
    }
  }
  for (int v = 0; v < V; ++v) {
    const __mmask16 mask = lanes_mask(valid - v * kShiftedLanes);
    for (int i = 0; i < R; ++i) {
      // x > 0 ? x : 0, as relu_fwd: NaN and -0 become +0.
      const __m512 out =
          Relu ? _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(acc[i][v], _mm512_setzero_ps(), _CMP_GT_OQ),
                                     acc[i][v])
               : acc[i][v];
      if (dst[i]) _mm512_mask_storeu_ps(dst[i] + v * kShiftedLanes, mask, out);
    }
  }
}

// Output rows [r, r + R) of the band (those that exist: BandOutput::row), all filters.
template <int R, bool Relu>
void shifted_rows_forward(const Conv3dShape& s, const float* slab, const TapRows& taps,
                          const float* wt, int64_t kpad, const float* bias, const BandOutput& out,
                          int64_t r) {
  float* dst[R];
  for (int i = 0; i < R; ++i)
    dst[i] = out.row(r + i);
  const float* a = slab + r * s.c;
  for (int64_t kb = 0; kb < kpad; kb += 2 * kShiftedLanes) {
    float* dst_kb[R];
    for (int i = 0; i < R; ++i)
      dst_kb[i] = dst[i] ? dst[i] + kb : nullptr;
    if (kpad - kb >= 2 * kShiftedLanes)
      shifted_block_avx512<R, 2, Relu>(a, taps, s.c, wt + kb, kpad, bias + kb, dst_kb, s.k - kb);
    else
      shifted_block_avx512<R, 1, Relu>(a, taps, s.c, wt + kb, kpad, bias + kb, dst_kb, s.k - kb);
  }
}

// The band's output = bias + sum over tap rows of view (m × KW·c) · wt[tap row] (KW·c × kpad),
// written into y (through ReLU with `Relu`); `bias` is kpad values (zero past k). The register
// blocks cut the m rows one of two ways, whichever computes fewer rows:
// - blocks of 12 over the padded pitch, which also compute the wp - ow dropped rows after each
//   line (30/28 of the work at conv2a, 34/32 at keras3d's conv1b);
// - blocks of 14 within each output line, which compute only what rounds ow up to 14: nothing
//   more on C3D's lines of 112, 56, 28 and 14.
template <bool Relu>
void shifted_band_forward(const Conv3dShape& s, const float* slab, const TapRows& taps,
                          const float* wt, int64_t kpad, int64_t m, const float* bias,
                          const BandOutput& out) {
  const int64_t over_pitch = ceil_div(m, kShiftedRows) * kShiftedRows;
  const int64_t within_lines = out.lines * ceil_div(out.ow, kShiftedLineRows) * kShiftedLineRows;
  if (within_lines < over_pitch) {
    for (int64_t line = 0; line < out.lines; ++line)
      for (int64_t w = 0; w < out.ow; w += kShiftedLineRows)
        shifted_rows_forward<kShiftedLineRows, Relu>(s, slab, taps, wt, kpad, bias, out,
                                                     line * out.wp + w);
  } else {
    for (int64_t r = 0; r < m; r += kShiftedRows)
      shifted_rows_forward<kShiftedRows, Relu>(s, slab, taps, wt, kpad, bias, out, r);
  }
}
#endif

// The same product without the micro-kernel (double, or no AVX-512): one OpenBLAS GEMM per tap
// (depth c: a GEMM's rows may not overlap, so tap rows are split back into taps) into a buffer of
// the band's padded rows, started from the bias, then the output rows copied into y (through
// ReLU with `relu`).
template <typename T>
void shifted_band_forward_gemm(const Conv3dShape& s, const T* slab, const TapRows& taps,
                               const T* wt, int64_t kpad, int64_t m, const T* bias, bool relu,
                               std::vector<T>& buffer, int64_t lines, int64_t wp, T* y) {
  buffer.resize(m * kpad);
  for (int64_t r = 0; r < m; ++r)
    std::copy_n(bias, kpad, buffer.data() + r * kpad);
  for (size_t t = 0; t < taps.offsets.size(); ++t)
    for (int tw = 0; tw < s.kernel.w; ++tw) {
      const int64_t tap = int64_t(t) * s.kernel.w + tw;
      gemm<T>(false, false, m, s.k, s.c, T(1), slab + taps.offsets[t] + tw * s.c, s.c,
              wt + tap * s.c * kpad, kpad, T(1), buffer.data(), kpad);
    }
  for (int64_t i = 0; i < lines; ++i)
    for (int ow = 0; ow < s.out.w; ++ow) {
      T* out = y + (i * s.out.w + ow) * s.k;
      std::copy_n(buffer.data() + (i * wp + ow) * kpad, s.k, out);
      if (relu) relu_fwd<T>(s.k, out, out);
    }
}

// y = conv(x) (relu(conv(x)) with `relu`) for a shifted-eligible shape with the filter given as
// wt (T, c, kpad): row block (tap, :, :) is the product's B operand for that tap.
template <typename T>
void conv3d_fwd_shifted(const Conv3dShape& s, const T* x, const T* wt, const T* bias, bool relu,
                        T* y) {
  const ShiftedBands b(s, sizeof(T));
  const int64_t kpad = lanes_pad(s.k);
  std::vector<T> bias_pad(kpad, T(0));
  if (bias) std::copy_n(bias, s.k, bias_pad.data());
#pragma omp parallel num_threads(threads_for(s))
  {
    std::vector<T> slab, buffer;
    // Each item writes only its own lines of y: any schedule gives the same y.
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < b.items; ++item) {
      const int64_t band = item % b.bands, plane = item / b.bands;
      const int n = int(plane / s.out.d), od = int(plane % s.out.d);
      const int64_t oh0 = band * b.bh, lines = b.lines(band, s), m = b.rows(lines, s);
      load_slab(s, b, x, n, od, oh0, lines, slab);
      const TapRows taps(s, b, b.slab_lines(lines, s));
      T* y_band = y + ((int64_t(n) * s.out.d + od) * s.out.h + oh0) * s.out.w * s.k;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        const BandOutput out{b.wp, lines, s.out.w, s.k, y_band};
        if (relu)
          shifted_band_forward<true>(s, slab.data(), taps, wt, kpad, m, bias_pad.data(), out);
        else
          shifted_band_forward<false>(s, slab.data(), taps, wt, kpad, m, bias_pad.data(), out);
        continue;
      }
#endif
      shifted_band_forward_gemm(s, slab.data(), taps, wt, kpad, m, bias_pad.data(), relu, buffer,
                                lines, b.wp, y_band);
    }
  }
}

#if defined(__AVX512F__)
// bwd-filter's register blocks: CB input channels x 2 vectors of 16 filters, held over all rows
// of a band; per row, 2 loads of dy and CB broadcasts feed 2·CB FMAs. CB = 12 uses 24 of the 32
// registers as accumulators and needs 14 loads per 24 FMAs (CB = 8: 10 per 16); blocks of 8
// cover what multiples of 12 leave (c = 64: 12,12,12,12,8,8). Measured alone on one core at
// conv2a's band (840 rows, c = 64, k = 128): 172 GFLOP/s with CB = 8 alone, 221 with 12 and rows
// unrolled by two, of a 240 peak.

// The rows of a band that hold outputs: `lines` runs of `width` rows, `pitch` rows apart (the
// rows between them are the dropped positions past each output line, whose dy is zero: bwd-filter
// skips them, 2/30 of conv2a's rows).
struct BandLines {
  int64_t lines, pitch, width;
};

// dwt rows [j0, j0 + cb) of one tap row (pitch kpad, V vectors wide) += view[:, j0 : j0 + CB]ᵀ ·
// dy, over the band's output rows; `a` is the view shifted to column c0. Columns past c (when cb <
// CB) read the next row's values: computed, never stored. The slab's zero slack covers the reads
// past its last row.
template <int CB, int V>
void filter_block_avx512(const float* a, int64_t c, const float* dyb, int64_t kpad,
                         const BandLines& rows, int cb, float* dwt) {
  __m512 acc[CB][V];
  for (int i = 0; i < CB; ++i)
    for (int v = 0; v < V; ++v)
      acc[i][v] = _mm512_setzero_ps();
  const auto row = [&](int64_t r) {
    __m512 dv[V];
    for (int v = 0; v < V; ++v)
      dv[v] = _mm512_loadu_ps(dyb + r * kpad + v * kShiftedLanes);
    for (int i = 0; i < CB; ++i) {
      const __m512 xv = _mm512_set1_ps(a[r * c + i]);
      for (int v = 0; v < V; ++v)
        acc[i][v] = _mm512_fmadd_ps(xv, dv[v], acc[i][v]);
    }
  };
  for (int64_t line = 0; line < rows.lines; ++line) {
    const int64_t end = line * rows.pitch + rows.width;
    int64_t r = line * rows.pitch;
    for (; r + 1 < end; r += 2) {  // two rows per step: one branch per 48 FMAs
      row(r);
      row(r + 1);
    }
    if (r < end) row(r);
  }
  for (int i = 0; i < cb; ++i)
    for (int v = 0; v < V; ++v) {
      float* d = dwt + i * kpad + v * kShiftedLanes;
      _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc[i][v]));
    }
}

// The channel blocks of bwd-filter: as many blocks of 12 as leave a multiple of 8, then blocks
// of 8 (the last one partial when c is not a multiple of 4).
int filter_wide_blocks(int c) {
  int wide = c / kFilterWideChannels;
  while (wide > 0 && (c - wide * kFilterWideChannels) % kFilterNarrowChannels != 0)
    --wide;
  return wide;
}

// One channel block of one tap: all kpad columns, 2 vectors at a time (1 for a last odd one).
template <int CB>
void filter_channel_block(const float* view, int c, const float* dyb, int64_t kpad,
                          const BandLines& rows, int cb, float* dwt) {
  for (int64_t kb = 0; kb < kpad; kb += 2 * kShiftedLanes) {
    if (kpad - kb >= 2 * kShiftedLanes)
      filter_block_avx512<CB, 2>(view, c, dyb + kb, kpad, rows, cb, dwt + kb);
    else
      filter_block_avx512<CB, 1>(view, c, dyb + kb, kpad, rows, cb, dwt + kb);
  }
}

// bwd-filter for a shifted-eligible shape in float: per band, dwᵀ[tap] (c × kpad) += view(tap)ᵀ ·
// dy_band, with dy_band laid out at the padded row pitch (zero in the dropped rows and for
// k >= s.k). One partial (T, c, kpad) + dbias per thread, summed in thread order and transposed
// into dw (k, T, c) at the end: deterministic for a given thread count, as the GEMM path.
void conv3d_bwd_filter_shifted(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                               float* dbias) {
  const ShiftedBands b(s, sizeof(float));
  const int64_t taps = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w, kpad = lanes_pad(s.k);
  const int64_t dwt_size = taps * s.c * kpad, part_size = dwt_size + kpad;
  const int threads = int(
      std::clamp<int64_t>(kPartialBytes / (part_size * int64_t(sizeof(float))), 1, threads_for(s)));
  const int64_t depth = int64_t(s.kernel.w) * s.c;
  const int wide = filter_wide_blocks(int(depth));
  std::vector<float> partial(threads * part_size, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> slab, dyb;
    float* part = partial.data() + omp_get_thread_num() * part_size;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < b.items; ++item) {
      const int64_t band = item % b.bands, plane = item / b.bands;
      const int n = int(plane / s.out.d), od = int(plane % s.out.d);
      const int64_t oh0 = band * b.bh, lines = b.lines(band, s), m = b.rows(lines, s);
      load_slab(s, b, x, n, od, oh0, lines, slab);
      dyb.assign(m * kpad, 0.0f);
      for (int64_t i = 0; i < lines; ++i)
        for (int ow = 0; ow < s.out.w; ++ow) {
          const float* src =
              dy + (((int64_t(n) * s.out.d + od) * s.out.h + oh0 + i) * s.out.w + ow) * s.k;
          std::copy_n(src, s.k, dyb.data() + (i * b.wp + ow) * kpad);
          for (int k = 0; k < s.k; ++k)
            part[dwt_size + k] += src[k];
        }
      const TapRows tap_rows(s, b, b.slab_lines(lines, s));
      const BandLines rows{lines, b.wp, s.out.w};
      for (size_t t = 0; t < tap_rows.offsets.size(); ++t) {
        const float* view = slab.data() + tap_rows.offsets[t];
        float* dwt = part + int64_t(t) * depth * kpad;
        int64_t j0 = 0;
        for (; j0 < wide * kFilterWideChannels; j0 += kFilterWideChannels)
          filter_channel_block<kFilterWideChannels>(view + j0, s.c, dyb.data(), kpad, rows,
                                                    kFilterWideChannels, dwt + j0 * kpad);
        for (; j0 < depth; j0 += kFilterNarrowChannels)
          filter_channel_block<kFilterNarrowChannels>(
              view + j0, s.c, dyb.data(), kpad, rows,
              int(std::min<int64_t>(kFilterNarrowChannels, depth - j0)), dwt + j0 * kpad);
      }
    }
#pragma omp for schedule(static)
    for (int64_t j = 0; j < taps * s.c; ++j)  // j = tap * c + c
      for (int k = 0; k < s.k; ++k) {
        float sum = 0;
        for (int th = 0; th < threads; ++th)
          sum += partial[th * part_size + j * kpad + k];
        dw[k * taps * s.c + j] = sum;
      }
  }
  if (!dbias) return;
  for (int k = 0; k < s.k; ++k) {
    float sum = 0;
    for (int th = 0; th < threads; ++th)
      sum += partial[th * part_size + dwt_size + k];
    dbias[k] = sum;
  }
}
#endif

// The forward's B operands: wt (T, c, kpad) with wt[tap, c, k] = w[k, tap, c], zero for k >= s.k.
template <typename T>
std::vector<T> taps_filter(const Conv3dShape& s, const T* w) {
  const int64_t taps = s.filter_size() / (int64_t(s.k) * s.c), kpad = lanes_pad(s.k);
  std::vector<T> wt(taps * s.c * kpad, T(0));
  for (int k = 0; k < s.k; ++k)
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int c = 0; c < s.c; ++c)
        wt[(tap * s.c + c) * kpad + k] = w[(k * taps + tap) * s.c + c];
  return wt;
}

// bwd-data's B operands, for bwd_data_as_forward(s): wd (T, k, cpad) with wd[tap, k, c] = w[k,
// T-1-tap, c].
template <typename T>
std::vector<T> flipped_filter(const Conv3dShape& s, const T* w) {
  const int64_t taps = s.filter_size() / (int64_t(s.k) * s.c), cpad = lanes_pad(s.c);
  std::vector<T> wd(taps * s.k * cpad, T(0));
  for (int64_t tap = 0; tap < taps; ++tap)
    for (int k = 0; k < s.k; ++k)
      std::copy_n(w + (k * taps + taps - 1 - tap) * s.c, s.c, wd.data() + (tap * s.k + k) * cpad);
  return wd;
}

// ---- few input channels: direct loops instead of GEMM -----------------------------------------
// At c <= kDirectMaxChannels (RGB or gray input layers) a column row holds only taps * c values
// (27 for keras3d's conv1a), a GEMM depth too shallow for OpenBLAS: packing the column tile and
// the call overhead cost more than the multiply (conv1a fwd ran at 12 GFLOP/s, conv1b at 57). The
// direct loops gather one row at a time into a buffer that stays in L1 and update all k outputs
// of a position with one vectorised sweep over the transposed filter (taps * c, k).
constexpr int kDirectMaxChannels = 4;
// Rows per work item: enough to amortise the Cursor's divisions, small enough to balance threads.
constexpr int64_t kDirectTileRows = 512;

bool use_direct(const Conv3dShape& s) {
  return s.c <= kDirectMaxChannels;
}

// The forward's register block: kBlockRows output positions x kLanes filters (one AVX-512
// vector of floats), 8 independent accumulator vectors so that the FMA latency (4 cycles, 2 per
// cycle) is hidden; accumulating in memory instead chained every FMA through a store and a load.
constexpr int kBlockRows = 8;
constexpr int kLanes = 16;

// w (k, taps * c) -> wt (taps * c, kpad), k padded with zero filters to a multiple of kLanes.
template <typename T>
std::vector<T> transpose_filter(const Conv3dShape& s, const T* w, int64_t kpad) {
  const int64_t row_len = s.filter_size() / s.k;
  std::vector<T> wt(row_len * kpad, T(0));
  for (int k = 0; k < s.k; ++k)
    for (int64_t j = 0; j < row_len; ++j)
      wt[j * kpad + k] = w[k * row_len + j];
  return wt;
}

// y rows [r, r + rows) (rows <= kBlockRows) from their column rows `col` (kBlockRows x row_len).
template <typename T>
void fwd_direct_block(const Conv3dShape& s, const T* col, int64_t row_len, const T* wt,
                      int64_t kpad, const T* bias, int rows, T* y) {
  for (int64_t kb = 0; kb < kpad; kb += kLanes) {
    T acc[kBlockRows][kLanes] = {};
    for (int64_t j = 0; j < row_len; ++j) {
      const T* wj = wt + j * kpad + kb;
      for (int i = 0; i < kBlockRows; ++i) {
        const T v = col[i * row_len + j];
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          acc[i][l] += v * wj[l];
      }
    }
    const int width = int(std::min<int64_t>(kLanes, s.k - kb));
    for (int i = 0; i < rows; ++i)
      for (int l = 0; l < width; ++l)
        y[i * s.k + kb + l] = acc[i][l] + (bias ? bias[kb + l] : T(0));
  }
}

template <typename T>
void conv3d_fwd_direct(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t rows = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  const int64_t row_len = s.filter_size() / s.k;
  const int64_t kpad = ceil_div(s.k, kLanes) * kLanes;
  const std::vector<T> wt = transpose_filter(s, w, kpad);
  const int64_t tiles = ceil_div(rows, kDirectTileRows);
#pragma omp parallel num_threads(threads_for(s))
  {
    // Rows past the end of a tile keep stale (finite) values: computed, never stored.
    std::vector<T> col(kBlockRows * row_len, T(0));
    // Each tile writes only its own rows of y, so the order tiles run in does not matter: dynamic
    // scheduling lets a thread that was not preempted take over the other's work.
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t first = t * kDirectTileRows, end = std::min(rows, first + kDirectTileRows);
      Cursor o(first, s.out.d, s.out.h, s.out.w);
      for (int64_t r = first; r < end; r += kBlockRows) {
        const int block = int(std::min<int64_t>(kBlockRows, end - r));
        for (int i = 0; i < block; ++i, o.next())
          vol2col_row(s, x, o, col.data() + i * row_len);
        fwd_direct_block(s, col.data(), row_len, wt.data(), kpad, bias, block, y + r * s.k);
      }
    }
  }
}

// One tile's column rows (rows x row_pad, zero beyond row_len) and dy rows (rows x kpad, zero
// beyond k), padded so that the register blocks below need no edge cases.
template <typename T>
struct FilterTile {
  std::vector<T> col, dy;
  void load(const Conv3dShape& s, const T* x, const T* dy_all, int64_t first, int rows,
            int64_t row_pad, int64_t kpad) {
    col.assign(rows * row_pad, T(0));
    dy.assign(rows * kpad, T(0));
    Cursor o(first, s.out.d, s.out.h, s.out.w);
    for (int r = 0; r < rows; ++r, o.next()) {
      vol2col_row(s, x, o, col.data() + r * row_pad);
      std::copy_n(dy_all + (first + r) * s.k, s.k, dy.data() + r * kpad);
    }
  }
};

// dwt[j, :] += sum over the tile's rows of col[r, j] * dy[r, :], for kBlockRows values of j and
// kLanes filters at a time, held in registers across the rows (the transpose of the forward's
// block).
template <typename T>
void bwd_filter_direct_tile(const FilterTile<T>& t, int rows, int64_t row_pad, int64_t kpad,
                            T* dwt) {
  for (int64_t j0 = 0; j0 < row_pad; j0 += kBlockRows)
    for (int64_t kb = 0; kb < kpad; kb += kLanes) {
      T acc[kBlockRows][kLanes] = {};
      for (int r = 0; r < rows; ++r) {
        const T* dyr = t.dy.data() + r * kpad + kb;
        const T* cr = t.col.data() + r * row_pad + j0;
        for (int i = 0; i < kBlockRows; ++i) {
          const T v = cr[i];
#pragma omp simd
          for (int l = 0; l < kLanes; ++l)
            acc[i][l] += v * dyr[l];
        }
      }
      for (int i = 0; i < kBlockRows; ++i)
        for (int l = 0; l < kLanes; ++l)
          dwt[(j0 + i) * kpad + kb + l] += acc[i][l];
    }
}

// dw as (row_pad + 1, kpad) partial sums per thread (the last row is dbias), summed in thread
// order and transposed at the end: deterministic for a given thread count, as the GEMM path.
template <typename T>
void conv3d_bwd_filter_direct(const Conv3dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const int64_t rows = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  const int64_t row_len = s.filter_size() / s.k;
  const int64_t row_pad = ceil_div(row_len, kBlockRows) * kBlockRows;
  const int64_t kpad = ceil_div(s.k, kLanes) * kLanes;
  const int64_t part_size = (row_pad + 1) * kpad;
  const int threads = threads_for(s);
  const int64_t tiles = ceil_div(rows, kDirectTileRows);
  std::vector<T> partial(threads * part_size, T(0));
#pragma omp parallel num_threads(threads)
  {
    FilterTile<T> tile;
    T* dwt = partial.data() + omp_get_thread_num() * part_size;
    T* db = dwt + row_pad * kpad;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t first = t * kDirectTileRows;
      const int count = int(std::min(kDirectTileRows, rows - first));
      tile.load(s, x, dy, first, count, row_pad, kpad);
      bwd_filter_direct_tile(tile, count, row_pad, kpad, dwt);
      for (int r = 0; r < count; ++r)
#pragma omp simd
        for (int64_t l = 0; l < kpad; ++l)
          db[l] += tile.dy[r * kpad + l];
    }
  }
  for (int k = 0; k < s.k; ++k)
    for (int64_t j = 0; j <= row_len; ++j) {
      const int64_t slot = (j < row_len ? j : row_pad) * kpad + k;  // row_pad: the dbias row
      T sum = 0;
      for (int th = 0; th < threads; ++th)
        sum += partial[th * part_size + slot];
      if (j < row_len)
        dw[k * row_len + j] = sum;
      else if (dbias)
        dbias[k] = sum;
    }
}

// The forward by vol2col tiles and OpenBLAS: any shape.
template <typename T>
void conv3d_fwd_vol2col(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t rows = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  const int64_t row_len = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w * s.c;
  const int threads = threads_for(s);
  const int64_t tile = tile_rows(rows, row_len, sizeof(T), threads);
  const int64_t tiles = ceil_div(rows, tile);
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> col;
    // Tiles write disjoint rows of y: dynamic scheduling keeps the result exact and lets one
    // thread take over tiles while the other is preempted (the machine is often shared).
#pragma omp for schedule(dynamic)
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

// The forward by the fastest path for the shape; with `relu`, y = relu(conv + bias), applied as
// results are stored where the path allows (the shifted views), else in a pass over y.
template <typename T>
void conv3d_fwd_path(const Conv3dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  if (use_shifted<T>(s)) {
    conv3d_fwd_shifted(s, x, taps_filter(s, w).data(), bias, relu, y);
    return;
  }
  if (use_direct(s))
    conv3d_fwd_direct(s, x, w, bias, y);
  else
    conv3d_fwd_vol2col(s, x, w, bias, y);
  if (relu) relu_fwd<T>(s.output_size(), y, y);
}

}  // namespace

template <typename T>
void conv3d_fwd(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y) {
  conv3d_fwd_path(s, x, w, bias, false, y);
}

template <typename T>
void conv3d_fwd_bias_relu(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y) {
  conv3d_fwd_path(s, x, w, bias, true, y);
}

template <typename T>
void conv3d_bwd_data(const Conv3dShape& s, const T* dy, const T* w, T* dx) {
  // The forward on dy has s.c filters: below kShiftedMinChannels most of each vector is padding.
  if (use_shifted<T>(bwd_data_as_forward(s)) && s.c >= kShiftedMinChannels) {
    conv3d_fwd_shifted<T>(bwd_data_as_forward(s), dy, flipped_filter(s, w).data(), nullptr, false,
                          dx);
    return;
  }
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
    // Each dx row belongs to one tile (see bwd_data_tile), so any schedule gives the same dx.
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < int64_t(tiles.size()); ++i) {
      const DataTile& t = tiles[i];
      bwd_data_tile(s, phases[t.phase], wp.data() + wp_offset[t.phase], dy, t, col, out, dx);
    }
  }
}

template <typename T>
void conv3d_bwd_filter(const Conv3dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (use_shifted<T>(s)) {
      conv3d_bwd_filter_shifted(s, x, dy, dw, dbias);
      return;
    }
  }
#endif
  if (use_direct(s)) {
    conv3d_bwd_filter_direct(s, x, dy, dw, dbias);
    return;
  }
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

template <typename T>
void conv3d_flip_transpose_filters(const Conv3dShape& s, const T* w, T* wt) {
  const int64_t taps = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w;
  for (int ci = 0; ci < s.c; ++ci)
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int ko = 0; ko < s.k; ++ko)
        wt[(ci * taps + tap) * s.k + ko] = w[(ko * taps + taps - 1 - tap) * s.c + ci];
}

#define CU3D_INSTANTIATE_CONV3D(T)                                                             \
  template void conv3d_fwd<T>(const Conv3dShape&, const T*, const T*, const T*, T*);           \
  template void conv3d_fwd_bias_relu<T>(const Conv3dShape&, const T*, const T*, const T*, T*); \
  template void conv3d_bwd_data<T>(const Conv3dShape&, const T*, const T*, T*);                \
  template void conv3d_bwd_filter<T>(const Conv3dShape&, const T*, const T*, T*, T*);          \
  template void conv3d_fwd_naive<T>(const Conv3dShape&, const T*, const T*, const T*, T*);     \
  template void conv3d_bwd_data_naive<T>(const Conv3dShape&, const T*, const T*, T*);          \
  template void conv3d_bwd_filter_naive<T>(const Conv3dShape&, const T*, const T*, T*, T*);    \
  template void conv3d_flip_transpose_filters<T>(const Conv3dShape&, const T*, T*);
CU3D_INSTANTIATE_CONV3D(float)
CU3D_INSTANTIATE_CONV3D(double)
#undef CU3D_INSTANTIATE_CONV3D

}  // namespace cu3d::cpu
