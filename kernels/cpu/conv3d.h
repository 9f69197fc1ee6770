// 3D convolution on the CPU (cross-correlation, as in every framework), channels-last.
//   x is (n, in.d, in.h, in.w, c), w is (k, kernel.d, kernel.h, kernel.w, c), bias is (k),
//   y is (n, out.d, out.h, out.w, k). Zero padding pad_before/pad_after per axis, any stride
//   and kernel size; conv2d is the D = 1 case.
//
// Cost of each of the three passes: MACs = n*out.d*out.h*out.w * k * kernel.d*kernel.h*kernel.w*c
// (Conv3dShape::macs()), FLOPs = 2*MACs. Bytes at least once each: forward reads x and w and
// writes y; bwd-data reads dy and w and writes dx; bwd-filter reads x and dy and writes dw.
// On C3D's conv2a at batch 2 (8x28x28x64 -> 128, 3x3x3) that is 5.5 GFLOP per pass against
// 3.2 MB of x and 6.4 MB of y: compute-bound, so the fast versions are GEMMs (see
// docs/kernels/conv3d_cpu.md):
//   forward      y (P, k)      = col(x) (P, T*c) * w^T (T*c, k)        P = output positions
//   bwd-filter   dw (k, T*c)   = dy^T (k, P) * col(x) (P, T*c)          T = kernel taps
//   bwd-data     dx (Q, c)     = col(dy) (Q, T'*k) * w' (T'*k, c)       Q = input positions
// col() is built one tile of rows at a time (bounded memory), each OpenMP thread running a
// single-threaded GEMM on its own tiles. The `_naive` versions are plain loops: the spec.
#pragma once

#include "kernels/shapes.h"

namespace cu3d::cpu {

// Writes y. `bias` may be null (no bias).
template <typename T>
void conv3d_fwd(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y);

// Writes y = relu(conv(x, w) + bias): the fused block's forward. On the shifted-view path (stride
// 1, float, AVX-512) ReLU is applied as the results are stored, so y is written once and never
// read back; other paths run a ReLU pass over y. Same values as conv3d_fwd then relu_fwd.
template <typename T>
void conv3d_fwd_bias_relu(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y);

// Writes (overwrites) dx = dL/dx from dy = dL/dy.
template <typename T>
void conv3d_bwd_data(const Conv3dShape& s, const T* dy, const T* w, T* dx);

// Writes (overwrites) dw = dL/dw and, unless null, dbias = dL/dbias.
template <typename T>
void conv3d_bwd_filter(const Conv3dShape& s, const T* x, const T* dy, T* dw, T* dbias);

// wt = the filters of bwd_data_as_forward(s) (kernels/shapes.h): w flipped in space with its
// channel axes swapped, wt[ci][tap][ko] = w[ko][taps - 1 - tap][ci]; |w| elements. The CPU
// reference of the transpose the CUDA version 3 runs before its backward-data.
template <typename T>
void conv3d_flip_transpose_filters(const Conv3dShape& s, const T* w, T* wt);

template <typename T>
void conv3d_fwd_naive(const Conv3dShape& s, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv3d_bwd_data_naive(const Conv3dShape& s, const T* dy, const T* w, T* dx);
template <typename T>
void conv3d_bwd_filter_naive(const Conv3dShape& s, const T* x, const T* dy, T* dw, T* dbias);

}  // namespace cu3d::cpu
