// Fully connected layer on the CPU: y = x * w^T + b.
//   x is (m, in), w is (out, in) (PyTorch's and cuBLAS-friendly order), b is (out), y is (m, out).
//
// FLOPs: 2*m*in*out per pass (forward, bwd-data, bwd-weight). Bytes at least once each:
// 4*(m*in + out*in + m*out) for float. C3D's fc6 at batch 32 (8192 -> 4096) is 2.1 GFLOP per
// pass against 134 MB of weights: memory-bound below batch ~30, compute-bound above.
// Each pass is one multi-threaded OpenBLAS GEMM (see gemm.h).
#pragma once

#include <cstdint>

namespace cu3d::cpu {

// Writes y. `b` may be null (no bias).
template <typename T>
void dense_fwd(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* b, T* y);

// Writes (overwrites) dx (m, in), dw (out, in) and db (out) from dy (m, out); any of the three
// may be null when that gradient is not needed.
template <typename T>
void dense_bwd(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* dy, T* dx,
               T* dw, T* db);

template <typename T>
void dense_fwd_naive(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* b, T* y);
template <typename T>
void dense_bwd_naive(int64_t m, int64_t in, int64_t out, const T* x, const T* w, const T* dy, T* dx,
                     T* dw, T* db);

}  // namespace cu3d::cpu
