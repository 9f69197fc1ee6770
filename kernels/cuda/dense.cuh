// Fully connected layer on the GPU through cuBLASLt: the CUDA twins of kernels/cpu/dense.h
// (y = x * w^T + b with x (m, in), w (out, in), b (out), y (m, out), row-major fp32 in device
// memory), with the compute precision and a stream as trailing arguments.
//
// Each pass is one cublasLtMatmul on the row-major arrays read as column-major transposes:
//   fwd       y^T (out x m)  = w (out x in)   * x^T (in x m)     [A = w^T stored, op T]
//   bwd-data  dx^T (in x m)  = w^T (in x out) * dy^T (out x m)
//   bwd-w     dw^T (in x out) = x^T (in x m)  * dy (m x out)      [B = dy^T stored, op T]
// The forward adds the bias (and optionally applies ReLU) in cuBLASLt's epilogue, so y is
// written once. The bias gradient is a deterministic column sum of dy (one thread per output,
// rows in order). Precision maps to the compute type: fp32 -> CUBLAS_COMPUTE_32F (FFMA),
// tf32 -> CUBLAS_COMPUTE_32F_FAST_TF32, bf16 -> CUBLAS_COMPUTE_32F_FAST_16BF (tensor cores,
// operands rounded inside cuBLAS, fp32 accumulation and output).
//
// Cost: 2*m*in*out FLOPs per pass; 4*(m*in + out*in + m*out) bytes at least. C3D's fc6 at
// batch 32 (8192 -> 4096) moves 134 MB of weights for 2.1 GFLOP: memory-bound below batch
// ~100 in bf16 on an H100. Workspace: up to 32 MiB from the stream-ordered pool per call.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/precision.h"

namespace cu3d::cuda {

// y = x * w^T + b; `b` may be null.
void dense_fwd(int64_t m, int64_t in, int64_t out, const float* x, const float* w, const float* b,
               float* y, Precision precision, cudaStream_t stream);

// Fused: y = relu(x * w^T + b) in the GEMM's epilogue. `b` may be null.
void dense_fwd_relu(int64_t m, int64_t in, int64_t out, const float* x, const float* w,
                    const float* b, float* y, Precision precision, cudaStream_t stream);

// Overwrites dx (m, in), dw (out, in) and db (out) from dy (m, out); each may be null.
void dense_bwd(int64_t m, int64_t in, int64_t out, const float* x, const float* w, const float* dy,
               float* dx, float* dw, float* db, Precision precision, cudaStream_t stream);

}  // namespace cu3d::cuda
