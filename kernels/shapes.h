// Shape and parameter structs shared by the CPU and CUDA kernels. All activations are
// channels-last (N,D,H,W,C); conv filters are (K,KD,KH,KW,C) with K output channels.
// A 2D op is the D = 1 case of its 3D twin (KD = 1, stride and padding 1 and 0 in depth).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/error.h"

namespace cu3d {

// Extent of a spatial window along the three axes (depth, height, width).
struct Dims3 {
  int d = 1, h = 1, w = 1;
  bool operator==(const Dims3&) const = default;
};

// How padding is chosen: explicit amounts, Keras/TensorFlow "same" (output = ceil(in/stride),
// extra padding after), or "valid" (no padding).
enum class Padding { explicit_, same, valid };

// Output size of a sliding window along one axis. `ceil_mode` is Caffe's pooling rounding.
inline int window_output_size(int in, int k, int stride, int pad_before, int pad_after,
                              bool ceil_mode = false) {
  const int span = in + pad_before + pad_after - k;
  CU3D_CHECK(span >= 0, "window of {} does not fit input of {} with padding {}+{}", k, in,
             pad_before, pad_after);
  int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // Caffe's rule: the last window must start inside the input or the leading padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_before) --out;
  return out;
}

// Padding before/after that TensorFlow's "same" uses for one axis.
inline void same_padding(int in, int k, int stride, int* before, int* after) {
  const int out = (in + stride - 1) / stride;
  const int total = std::max(0, (out - 1) * stride + k - in);
  *before = total / 2;
  *after = total - *before;
}

// A 3D convolution: input (n, in.d, in.h, in.w, c), filter (k, kernel.d, kernel.h, kernel.w, c),
// output (n, out.d, out.h, out.w, k).
struct Conv3dShape {
  int n = 1, c = 1, k = 1;
  Dims3 in, kernel, stride, pad_before, pad_after, out;

  // Fills `out` (and the padding for Padding::same/valid) from the other fields.
  static Conv3dShape make(int n, Dims3 in, int c, int k, Dims3 kernel, Dims3 stride,
                          Padding padding, Dims3 pad = {0, 0, 0});

  int64_t input_size() const { return int64_t(n) * in.d * in.h * in.w * c; }
  int64_t filter_size() const { return int64_t(k) * kernel.d * kernel.h * kernel.w * c; }
  int64_t output_size() const { return int64_t(n) * out.d * out.h * out.w * k; }
  // Multiply-accumulates of the forward pass; each backward pass costs the same.
  int64_t macs() const { return output_size() * kernel.d * kernel.h * kernel.w * c; }
};

// At stride 1, backward-data is itself a forward conv: dx = conv(dy, w') with the filters
// flipped in space and their channel axes swapped, w'[ci][tap][ko] = w[ko][taps - 1 - tap][ci],
// and padding kernel - 1 - pad on each side (which keeps dx's extent = x's). The CPU's
// shifted-view conv and the CUDA version 3 both run it that way.
// True when s has stride 1 and padding narrower than the kernel on every side.
bool bwd_data_is_forward(const Conv3dShape& s);
// That forward conv's shape: input dy (s.k channels), s.c filters, output dx.
Conv3dShape bwd_data_as_forward(const Conv3dShape& s);

// A 3D pooling window over (n, in.d, in.h, in.w, c) giving (n, out.d, out.h, out.w, c).
// Padded positions never win a max and are not counted by an average.
struct Pool3dShape {
  int n = 1, c = 1;
  Dims3 in, window, stride, pad_before, pad_after, out;

  static Pool3dShape make(int n, Dims3 in, int c, Dims3 window, Dims3 stride, Padding padding,
                          Dims3 pad = {0, 0, 0}, bool ceil_mode = false);

  int64_t input_size() const { return int64_t(n) * in.d * in.h * in.w * c; }
  int64_t output_size() const { return int64_t(n) * out.d * out.h * out.w * c; }
};

}  // namespace cu3d
