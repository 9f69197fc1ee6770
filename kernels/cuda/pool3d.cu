#include "kernels/cuda/pool3d.cuh"

#include <fmt/format.h>

#include <cstdint>

#include "kernels/cuda/pool_window.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/vec4.cuh"

namespace cu3d::cuda {
namespace {

// One thread per output element (V = 1), or per 4 channels (V = 4: c a multiple of 4, 16-byte
// aligned tensors, one 16-byte load per window position): consecutive threads take consecutive
// channels, so every load of a window position is coalesced across the warp. kD, kH, kW: the
// window's size when known at compile time (window_max), else 0. Index is int when every index
// fits (the split of i into (n, od, oh, ow, c) is then four 32-bit divisions instead of 64-bit
// ones, several times cheaper), else int64_t.
template <int kD, int kH, int kW, int V, class Index>
__global__ void __launch_bounds__(256)
    maxpool3d_fwd_kernel(Pool3dShape s, const float* x, float* y, Index total) {
  const int cv = s.c / V;
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < total;
       i += Index(gridDim.x) * blockDim.x) {
    const int c = int(i % cv) * V;
    float best[V];
    window_max<kD, kH, kW, V, int64_t>(
        s, pool_window(s, i / cv),
        [&](int64_t q, float(&v)[V], bool) { load_vec(x + q * s.c + c, v); }, best);
    store_vec(y + int64_t(i) * V, best);
  }
}

template <int kD, int kH, int kW, int V>
void launch_fwd(const Pool3dShape& s, const float* x, float* y, cudaStream_t stream) {
  const int64_t total = s.output_size() / V;
  const int blocks = grid_stride_blocks(total);
  if (total + int64_t(blocks) * 256 < (int64_t(1) << 31))
    maxpool3d_fwd_kernel<kD, kH, kW, V, int><<<blocks, 256, 0, stream>>>(s, x, y, int(total));
  else
    maxpool3d_fwd_kernel<kD, kH, kW, V, int64_t><<<blocks, 256, 0, stream>>>(s, x, y, total);
}

// Calls visit(od, oh, ow) for every output window that contains input coordinate (z, y, x).
template <class Visit>
__device__ inline void for_windows_containing(const Pool3dShape& s, int z, int y, int x,
                                              Visit visit) {
  // o * stride - pad <= i < o * stride - pad + window  <=>  o in [ceil((i+pad-window+1)/stride),
  // floor((i+pad)/stride)]
  auto range = [](int i, int pad, int window, int stride, int out, int* lo, int* hi) {
    const int a = i + pad - window + 1;
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    *hi = min((i + pad) / stride, out - 1);
  };
  int d0, d1, h0, h1, w0, w1;
  range(z, s.pad_before.d, s.window.d, s.stride.d, s.out.d, &d0, &d1);
  range(y, s.pad_before.h, s.window.h, s.stride.h, s.out.h, &h0, &h1);
  range(x, s.pad_before.w, s.window.w, s.stride.w, s.out.w, &w0, &w1);
  for (int od = d0; od <= d1; ++od)
    for (int oh = h0; oh <= h1; ++oh)
      for (int ow = w0; ow <= w1; ++ow)
        visit(od, oh, ow);
}

// Backward for overlapping windows: a gather, one thread per input element.
__global__ void __launch_bounds__(256)
    maxpool3d_bwd_kernel(Pool3dShape s, const float* x, const float* y, const float* dy, float* dx,
                         int64_t total, bool relu_input) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i % s.c);
    int64_t p = i / s.c;
    const int ix = int(p % s.in.w), iy = int(p / s.in.w % s.in.h);
    const int iz = int(p / s.in.w / s.in.h % s.in.d), n = int(p / s.in.w / s.in.h / s.in.d);
    const int64_t self = i - c;
    float grad = 0.f;
    for_windows_containing(s, iz, iy, ix, [&](int od, int oh, int ow) {
      const int64_t o = (((int64_t(n) * s.out.d + od) * s.out.h + oh) * s.out.w + ow) * s.c + c;
      const float best = __ldg(y + o);
      int64_t first = -1;
      for_window<int64_t>(s, {n, od, oh, ow}, [&](int64_t q) {
        if (__ldg(x + q * s.c + c) != best) return false;
        first = q * s.c;
        return true;
      });
      if (first == self && (!relu_input || best > 0.f)) grad += __ldg(dy + o);
    });
    dx[i] = grad;
  }
}

// Writes dx over window o for V channels c..: grad at each channel's first input equal to its max
// `best`, 0 elsewhere. Like window_max, a window of compile-time size (kD > 0) visits its positions
// clamped into the input (for_clamped_window), all its loads of x issued before the first
// comparison; a clamped repeat counts as a visit of its home position (which its value is), and
// only home visits write.
template <int kD, int kH, int kW, int V>
__device__ inline void write_window_grad(const Pool3dShape& s, PoolWindow o, int c, const float* x,
                                         const float (&best)[V], const float (&grad)[V],
                                         float* dx) {
  int first[V];  // index in window order of the first input equal to the max; -1: none (NaN)
#pragma unroll
  for (int e = 0; e < V; ++e)
    first[e] = -1;
  auto find = [&](int k, const float(&v)[V]) {
#pragma unroll
    for (int e = 0; e < V; ++e)
      if (first[e] < 0 && v[e] == best[e]) first[e] = k;
  };
  auto write = [&](int k, int64_t q) {
    float out[V];
#pragma unroll
    for (int e = 0; e < V; ++e)
      out[e] = first[e] == k ? grad[e] : 0.f;
    store_vec(dx + q * s.c + c, out);
  };
  if constexpr (kD > 0) {
    float v[kD * kH * kW][V];
    for_clamped_window<kD, kH, kW, int64_t>(
        s, o, [&](int k, int64_t q, int) { load_vec(x + q * s.c + c, v[k]); });
    for_clamped_window<kD, kH, kW, int64_t>(s, o,
                                            [&](int k, int64_t, int home) { find(home, v[k]); });
    for_clamped_window<kD, kH, kW, int64_t>(s, o, [&](int k, int64_t q, int home) {
      if (home == k) write(k, q);
    });
  } else {
    int k = 0;
    for_window<int64_t>(s, o, [&](int64_t q) {
      float v[V];
      load_vec(x + q * s.c + c, v);
      find(k++, v);
      return false;
    });
    k = 0;
    for_window<int64_t>(s, o, [&](int64_t q) {
      write(k++, q);
      return false;
    });
  }
}

// Backward for disjoint windows (stride >= window on every axis, every C3D pool): one thread per
// output element, or per 4 channels (V = 4, 16-byte loads and stores). It reads its window once to
// find each channel's first maximum, then writes the whole window of dx: dy there, 0 elsewhere.
// No two threads share a dx element, so no atomics and no zero fill, except where windows leave
// gaps (maxpool3d_bwd clears dx first then). Bytes: read x, y, dy, write dx, each once.
template <int kD, int kH, int kW, int V, class Index>
__global__ void __launch_bounds__(256)
    maxpool3d_bwd_disjoint_kernel(Pool3dShape s, const float* x, const float* y, const float* dy,
                                  float* dx, Index total, bool relu_input) {
  const int cv = s.c / V;
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < total;
       i += Index(gridDim.x) * blockDim.x) {
    float best[V], grad[V];
    load_vec(y + int64_t(i) * V, best);
    load_vec(dy + int64_t(i) * V, grad);
    if (relu_input) {
#pragma unroll
      for (int e = 0; e < V; ++e)
        grad[e] = best[e] > 0.f ? grad[e] : 0.f;
    }
    write_window_grad<kD, kH, kW, V>(s, pool_window(s, i / cv), int(i % cv) * V, x, best, grad, dx);
  }
}

template <int kD, int kH, int kW, int V>
void launch_bwd_disjoint(const Pool3dShape& s, const float* x, const float* y, const float* dy,
                         float* dx, bool relu_input, cudaStream_t stream) {
  const int64_t total = s.output_size() / V;
  const int blocks = grid_stride_blocks(total);
  if (total + int64_t(blocks) * 256 < (int64_t(1) << 31))
    maxpool3d_bwd_disjoint_kernel<kD, kH, kW, V, int>
        <<<blocks, 256, 0, stream>>>(s, x, y, dy, dx, int(total), relu_input);
  else
    maxpool3d_bwd_disjoint_kernel<kD, kH, kW, V, int64_t>
        <<<blocks, 256, 0, stream>>>(s, x, y, dy, dx, total, relu_input);
}

// The CPU's rule: a window entirely in the padding has no max.
void check_windows(const Pool3dShape& s) {
  auto axis_ok = [](int in, int window, int stride, int pad, int out) {
    return window - pad > 0 && (out - 1) * stride - pad < in;
  };
  CU3D_CHECK(axis_ok(s.in.d, s.window.d, s.stride.d, s.pad_before.d, s.out.d) &&
                 axis_ok(s.in.h, s.window.h, s.stride.h, s.pad_before.h, s.out.h) &&
                 axis_ok(s.in.w, s.window.w, s.stride.w, s.pad_before.w, s.out.w),
             "maxpool3d: some window of {}x{}x{} lies entirely in the padding of input {}x{}x{}; "
             "use less padding",
             s.window.d, s.window.h, s.window.w, s.in.d, s.in.h, s.in.w);
}

std::string describe(const char* op, const Pool3dShape& s) {
  return fmt::format("{} (x {}x{}x{}x{}x{}, window {}x{}x{})", op, s.n, s.in.d, s.in.h, s.in.w, s.c,
                     s.window.d, s.window.h, s.window.w);
}

}  // namespace

void maxpool3d_fwd(const Pool3dShape& s, const float* x, float* y, cudaStream_t stream) {
  check_windows(s);
  if (s.c % 4 == 0 && aligned16({x, y})) {
    dispatch_window(s, [&](auto kd, auto kh, auto kw) {
      launch_fwd<decltype(kd)::value, decltype(kh)::value, decltype(kw)::value, 4>(s, x, y, stream);
    });
  } else {
    launch_fwd<0, 0, 0, 1>(s, x, y, stream);
  }
  check_launch(describe("maxpool3d_fwd", s));
}

namespace {

// maxpool3d_bwd, with relu_input: each window's gradient masked by its max > 0.
void pool_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy, float* dx,
              bool relu_input, const char* op, cudaStream_t stream) {
  check_windows(s);
  if (!windows_disjoint(s)) {
    const int64_t total = s.input_size();
    maxpool3d_bwd_kernel<<<grid_stride_blocks(total), 256, 0, stream>>>(s, x, y, dy, dx, total,
                                                                        relu_input);
    check_launch(describe(op, s));
    return;
  }
  if (!windows_cover_input(s))
    CU3D_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * s.input_size(), stream));
  if (s.c % 4 == 0 && aligned16({x, y, dy, dx})) {
    dispatch_window(s, [&](auto kd, auto kh, auto kw) {
      launch_bwd_disjoint<decltype(kd)::value, decltype(kh)::value, decltype(kw)::value, 4>(
          s, x, y, dy, dx, relu_input, stream);
    });
  } else {
    launch_bwd_disjoint<0, 0, 0, 1>(s, x, y, dy, dx, relu_input, stream);
  }
  check_launch(describe(op, s));
}

}  // namespace

void maxpool3d_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy, float* dx,
                   cudaStream_t stream) {
  pool_bwd(s, x, y, dy, dx, false, "maxpool3d_bwd", stream);
}

void maxpool3d_relu_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy,
                        float* dx, cudaStream_t stream) {
  pool_bwd(s, x, y, dy, dx, true, "maxpool3d_relu_bwd", stream);
}

}  // namespace cu3d::cuda
