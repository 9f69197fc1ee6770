// Element-wise arithmetic on n contiguous values. Memory-bound: each op reads its inputs once and
// writes its output once (add/mul: 3n·sizeof(T) bytes, n FLOPs; sum: n·sizeof(T) bytes, n FLOPs).
#pragma once

#include <cstdint>

namespace cu3d::cpu {

template <typename T>
void add(int64_t n, const T* a, const T* b, T* y);  // y = a + b
template <typename T>
void mul(int64_t n, const T* a, const T* b, T* y);  // y = a * b
template <typename T>
void scale(int64_t n, T alpha, const T* x, T* y);  // y = alpha * x
// Sum accumulated in double (so f32 sums of millions of values keep their digits).
template <typename T>
double sum(int64_t n, const T* x);

}  // namespace cu3d::cpu
