// Row-major general matrix multiply on the CPU, a thin wrapper over OpenBLAS's cblas:
//   c (m, n) = alpha * op(a) (m, k) * op(b) (k, n) + beta * c
// where op(a) is a (m, k) with row stride lda, or its transpose when trans_a (a stored (k, m)).
// FLOPs: 2*m*n*k. Bytes: 4 (or 8) * (m*k + k*n + 2*m*n) at best, reading each operand once.
//
// Threading: Debian's OpenMP build of OpenBLAS runs single-threaded when called inside an
// `omp parallel` region and on all OpenMP threads outside one. The conv kernels rely on the
// first (one small GEMM per thread), dense on the second (one large GEMM on all threads).
#pragma once

#include <cstdint>

namespace cu3d::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace cu3d::cpu
