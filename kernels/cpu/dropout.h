// Inverted dropout with rate p over a flat array of n elements (any shape):
//   y[i] = keep(i) ? x[i] / (1 - p) : 0
// keep(i) = dropout_keeps(philox_u32_at(seed, offset, i), dropout_threshold(p)) from
// kernels/philox.h, a pure function of (seed, offset, i): a CUDA kernel using the same two
// functions draws the same mask, and the backward pass recomputes it
// (dx = keep(i) ? dy[i] / (1 - p) : 0) instead of storing n mask bits.
// Scaling at training time means evaluation is the identity. Needs 0 <= p < 1.
//
// Cost per element: one quarter of a Philox-4x32-10 block (~10 integer ops) and 1 FLOP;
// reads one array and writes one: 2*n*sizeof(T) bytes.
#pragma once

#include <cstdint>

namespace cu3d::cpu {

template <typename T>
void dropout_fwd(int64_t n, const T* x, double p, uint64_t seed, uint64_t offset, T* y);

template <typename T>
void dropout_bwd(int64_t n, const T* dy, double p, uint64_t seed, uint64_t offset, T* dx);

// One philox_u32_at call per element, the specification of the element -> random word
// mapping that the fast version (one Philox block per four elements) must reproduce.
template <typename T>
void dropout_fwd_naive(int64_t n, const T* x, double p, uint64_t seed, uint64_t offset, T* y);

}  // namespace cu3d::cpu
