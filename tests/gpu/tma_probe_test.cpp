// The TMA's im2col walk on the GPU against the conv's definition: what version 7 of the forward
// (conv3d_wgmma_tma.cuh) rests on, checked on its own (kernels/cuda/tma_probe.cuh). Every value
// of x is its own index + 1, as a raw 16- or 32-bit word, so each delivered word names the pixel
// and channel it came from (0: the zero fill); a failure prints, for the first wrong row, what it
// should hold and what it holds, which tells a wrong starting pixel from offsets or corners
// taken in another order. The host emulation implements the same walk (docs/EMULATION.md); only
// this test shows the hardware agrees.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/tma_probe.cuh"
#include "require_gpu.h"

namespace cu3d {
namespace {

struct Position {
  int n, z, y, x;
};

Position split(const Dims3& out, int64_t q) {
  return {int(q / (int64_t(out.d) * out.h * out.w)), int(q / (out.h * out.w) % out.d),
          int(q / out.w % out.h), int(q % out.w)};
}

// The word row q of the implicit GEMM holds for tap `tap` and channel `channel`: x's value there,
// or 0 in the padding and past the last output position.
uint32_t expected_word(const Conv3dShape& s, int64_t q, const Dims3& tap, int channel) {
  const int64_t rows = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
  if (q >= rows) return 0;
  const Position o = split(s.out, q);
  const int z = o.z - s.pad_before.d + tap.d, y = o.y - s.pad_before.h + tap.h,
            x = o.x - s.pad_before.w + tap.w;
  if (z < 0 || z >= s.in.d || y < 0 || y >= s.in.h || x < 0 || x >= s.in.w) return 0;
  return uint32_t((((int64_t(o.n) * s.in.d + z) * s.in.h + y) * s.in.w + x) * s.c + channel + 1);
}

std::string describe_word(const Conv3dShape& s, uint32_t word) {
  if (word == 0) return "zero";
  const int64_t i = int64_t(word) - 1, pixel = i / s.c;
  const Position p = split(s.in, pixel);
  return fmt::format("x[n {}, d {}, h {}, w {}, c {}]", p.n, p.z, p.y, p.x, i % s.c);
}

// Device memory holding x's indices + 1 as words of `bytes` bytes.
class IdTensor {
 public:
  IdTensor(const Conv3dShape& s, int bytes) : bytes_(size_t(s.input_size()) * bytes) {
    std::vector<unsigned char> host(bytes_);
    for (int64_t i = 0; i < s.input_size(); ++i) {
      const uint32_t word = uint32_t(i + 1);
      std::memcpy(host.data() + i * bytes, &word, size_t(bytes));  // little-endian low bytes
    }
    CU3D_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
    CU3D_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice));
  }
  ~IdTensor() { cudaFree(ptr_); }
  IdTensor(const IdTensor&) = delete;
  IdTensor& operator=(const IdTensor&) = delete;
  const void* get() const { return ptr_; }

 private:
  size_t bytes_;
  void* ptr_ = nullptr;
};

Dims3 tap_offset(const Conv3dShape& s, int tap) {
  return {tap / (s.kernel.h * s.kernel.w), tap / s.kernel.w % s.kernel.h, tap % s.kernel.w};
}

// The load of the GEMM's rows from m0 on for tap offset t from channel c0.
cuda::Im2colLoad load_at(const Conv3dShape& s, int64_t m0, const Dims3& t, int c0) {
  const Position o = split(s.out, m0);
  cuda::Im2colLoad at;
  at.c = c0;
  at.w = o.x - s.pad_before.w, at.h = o.y - s.pad_before.h, at.d = o.z - s.pad_before.d;
  at.n = o.n;
  at.offset = t;
  return at;
}

// `count` delivered rows against the conv's rows m0 .. m0 + count - 1 for tap offset t from
// channel c0; returns the wrong words and reports the first (`what` names the load).
long check_rows(const Conv3dShape& s, int element_bytes, const std::vector<unsigned char>& rows,
                int count, int64_t m0, const Dims3& t, int c0, const std::string& what) {
  const int per_row = 128 / element_bytes;
  long wrong = 0;
  for (int i = 0; i < count; ++i)
    for (int e = 0; e < per_row; ++e) {
      uint32_t got = 0;
      std::memcpy(&got, rows.data() + i * 128 + e * element_bytes, size_t(element_bytes));
      const uint32_t want = expected_word(s, m0 + i, t, c0 + e);
      if (got == want) continue;
      const Position o = split(s.out, m0);
      if (wrong++ == 0)
        ADD_FAILURE() << fmt::format(
            "{}: {}-byte words, load from row {} (n {}, d {}, h {}, w {}) for tap (d {}, h {}, w "
            "{}) from channel {}: row {} element {} should be {}, is {}",
            what, element_bytes, m0, o.n, o.z, o.y, o.x, t.d, t.h, t.w, c0, i, e,
            describe_word(s, want), describe_word(s, got));
    }
  return wrong;
}

// One load from GEMM row m0 for tap `tap` from channel c0, against the conv's rows.
long check_load(const Conv3dShape& s, const cuda::Im2colMapSpec& spec, int64_t m0, int tap,
                int c0) {
  const Dims3 t = tap_offset(s, tap);
  const std::vector<unsigned char> rows =
      cuda::tma_im2col_rows(spec, load_at(s, m0, t, c0), nullptr);
  return check_rows(s, spec.element_bytes, rows, spec.pixels, m0, t, c0, "one load");
}

TEST(TmaProbe, Im2colRowsAreTheConvRows) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const Conv3dShape shapes[] = {
      // C3D's layers in miniature (3x3x3, padding 1), and an even kernel's asymmetric "same"
      // padding: the corners differ by dimension and between lower and upper.
      Conv3dShape::make(2, {4, 6, 5}, 64, 64, {3, 3, 3}, {1, 1, 1}, Padding::explicit_, {1, 1, 1}),
      Conv3dShape::make(2, {3, 9, 7}, 64, 72, {2, 3, 2}, {1, 1, 1}, Padding::same)};
  for (const Conv3dShape& s : shapes)
    for (int bytes : {2, 4}) {
      const IdTensor x(s, bytes);
      const cuda::Im2colMapSpec spec = cuda::conv_input_map(s, x.get(), bytes, 256);
      const int64_t m = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
      const int taps = s.kernel.d * s.kernel.h * s.kernel.w;
      // From the first row, from mid-row, from just before a new d plane, and running past the
      // last row; the first tap, a middle one, the last; every 128-byte chunk of the channels.
      for (int64_t m0 : {int64_t(0), int64_t(5), int64_t(s.out.h) * s.out.w - 3, m - 7})
        for (int tap : {0, taps / 2, taps - 1})
          for (int c0 = 0; c0 < s.c; c0 += 128 / bytes)
            EXPECT_EQ(check_load(s, spec, m0, tap, c0), 0);
    }
}

// Version 8's sharing of a tile, on its own: two blocks of a cluster load the two halves of the
// GEMM rows m0 .. m0 + 2 * pixels - 1 by a multicast each; both blocks must hold both halves.
// From the first row, from mid-row, and with the second half starting past the last row (the
// last M tile of a layer whose rows end in the first half: its load starts in a sample that
// does not exist, and must deliver zeros and its bytes all the same).
TEST(TmaProbe, MulticastFillsBothBlocksOfTheCluster) {
  CU3D_REQUIRE_GPU();
  std::string why;
  if (!cuda::wgmma_available(&why)) GTEST_SKIP() << why;
  const Conv3dShape s =
      Conv3dShape::make(2, {4, 6, 5}, 64, 64, {3, 3, 3}, {1, 1, 1}, Padding::explicit_, {1, 1, 1});
  for (int bytes : {2, 4}) {
    const IdTensor x(s, bytes);
    constexpr int kHalf = 64;
    const cuda::Im2colMapSpec spec = cuda::conv_input_map(s, x.get(), bytes, kHalf);
    const int64_t m = int64_t(s.n) * s.out.d * s.out.h * s.out.w;
    const int taps = s.kernel.d * s.kernel.h * s.kernel.w;
    for (int64_t m0 : {int64_t(0), int64_t(5), m - kHalf + 3})
      for (int tap : {0, taps - 1}) {
        const Dims3 t = tap_offset(s, tap);
        const cuda::Im2colLoad at[2] = {load_at(s, m0, t, 0), load_at(s, m0 + kHalf, t, 0)};
        const cuda::ClusterRows rows = cuda::tma_im2col_rows_multicast(spec, at, nullptr);
        for (int block = 0; block < 2; ++block)
          EXPECT_EQ(check_rows(s, bytes, rows.block[block], 2 * kHalf, m0, t, 0,
                               fmt::format("block {} of the cluster", block)),
                    0);
      }
  }
}

}  // namespace
}  // namespace cu3d
