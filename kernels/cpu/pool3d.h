// 3D max pooling on the CPU, channels-last; 2D pooling is the D = 1 case.
//   x is (n, in.d, in.h, in.w, c), y is (n, out.d, out.h, out.w, c), window/stride/padding from
//   Pool3dShape::make (explicit, Keras "same", Caffe ceil mode). Padded positions never win.
//
// Cost: forward reads each window once, window.d*window.h*window.w comparisons per output
// (C3D pool2, 2x2x2: 8 per output) and 4*(|x| + |y|) bytes for float; backward reads x, y and
// dy and writes dx, the same comparisons again. Memory-bound: ~0.1 FLOP/byte.
//
// Backward follows cuDNN: each output's gradient goes to the first input of its window (in
// d, h, w order) equal to the output, so ties and overlapping windows match the GPU path.
// A NaN in a window makes its output NaN (as PyTorch does, so divergence shows); the gradient of
// such an output is dropped, since no input compares equal to NaN.
#pragma once

#include "kernels/shapes.h"

namespace cu3d::cpu {

// Writes y. Throws cu3d::Error when some window would lie entirely in the padding.
template <typename T>
void maxpool3d_fwd(const Pool3dShape& s, const T* x, T* y);

// Writes (overwrites) dx from x, the forward output y, and dy.
template <typename T>
void maxpool3d_bwd(const Pool3dShape& s, const T* x, const T* y, const T* dy, T* dx);

// The backward of maxpool(relu(.)) from the pool's side, for x a ReLU's output: dx =
// relu_bwd(x, maxpool3d_bwd(x, y, dy)) in one pass. A window's gradient reaches its first max
// only where that max is positive (y > 0): an input that is a first max equals its window's y,
// so masking dy by y > 0 is the ReLU's mask on dx, bit for bit (NaN windows drop theirs, as both
// do). Saves the ReLU backward's pass over x and dx (3|x| bytes) in the conv + ReLU + pool blocks.
template <typename T>
void maxpool3d_relu_bwd(const Pool3dShape& s, const T* x, const T* y, const T* dy, T* dx);

template <typename T>
void maxpool3d_fwd_naive(const Pool3dShape& s, const T* x, T* y);
template <typename T>
void maxpool3d_bwd_naive(const Pool3dShape& s, const T* x, const T* y, const T* dy, T* dx);

}  // namespace cu3d::cpu
