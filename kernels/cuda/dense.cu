#include "kernels/cuda/dense.cuh"

#include <string>

#include <cublasLt.h>
#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

// cuBLAS asks for 32 MiB of workspace on Hopper for its best kernels (cuBLAS docs, "cuBLAS
// workspace"); the stream-ordered pool keeps it allocated between calls.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

void check(cublasStatus_t status, const char* call, const std::string& what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(fmt::format("cuBLASLt error {} ({}) in {} for {}", int(status),
                            cublasLtGetStatusString(status), call, what));
}
#define CU3D_CUBLAS_CHECK(call, what) check((call), #call, (what))

class Handle {
 public:
  Handle() { CU3D_CUBLAS_CHECK(cublasLtCreate(&handle_), "cuBLASLt handle"); }
  ~Handle() { cublasLtDestroy(handle_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  cublasLtHandle_t get() const { return handle_; }

 private:
  cublasLtHandle_t handle_ = nullptr;
};

// One handle per host thread, like the cuDNN fallbacks.
cublasLtHandle_t handle() {
  thread_local Handle h;
  return h.get();
}

// Owns one cuBLASLt descriptor.
template <class T, cublasStatus_t (*Destroy)(T)>
class Owned {
 public:
  Owned() = default;
  ~Owned() {
    if (ptr_) Destroy(ptr_);
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  T* out() { return &ptr_; }
  T get() const { return ptr_; }

 private:
  T ptr_ = nullptr;
};
using MatmulDesc = Owned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using Layout = Owned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using Preference = Owned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

cublasComputeType_t compute_type(Precision p) {
  switch (p) {
    case Precision::fp32:
      return CUBLAS_COMPUTE_32F;
    case Precision::tf32:
      return CUBLAS_COMPUTE_32F_FAST_TF32;
    case Precision::bf16:
      return CUBLAS_COMPUTE_32F_FAST_16BF;
  }
  return CUBLAS_COMPUTE_32F;
}

// A column-major fp32 operand as stored: rows x cols with leading dimension ld.
struct Operand {
  const float* data;
  int64_t rows, cols;
  bool transpose;  // the GEMM reads op(A) = A^T
};

// d (rows_d x cols_d, column-major, ld rows_d) = op(a) * op(b), with the epilogue's bias.
void matmul(const Operand& a, const Operand& b, float* d, int64_t rows_d, int64_t cols_d,
            cublasLtEpilogue_t epilogue, const float* bias, Precision p, cudaStream_t stream,
            const std::string& what) {
  MatmulDesc desc;
  CU3D_CUBLAS_CHECK(cublasLtMatmulDescCreate(desc.out(), compute_type(p), CUDA_R_32F), what);
  const cublasOperation_t ta = a.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = b.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  CU3D_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
      what);
  CU3D_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
      what);
  CU3D_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                   &epilogue, sizeof(epilogue)),
                    what);
  if (bias)
    CU3D_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof(bias)),
                      what);
  Layout la, lb, ld;
  CU3D_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(la.out(), CUDA_R_32F, a.rows, a.cols, a.rows), what);
  CU3D_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(lb.out(), CUDA_R_32F, b.rows, b.cols, b.rows), what);
  CU3D_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(ld.out(), CUDA_R_32F, rows_d, cols_d, rows_d), what);
  Preference pref;
  CU3D_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(pref.out()), what);
  const uint64_t workspace_limit = kWorkspaceBytes;
  CU3D_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace_limit, sizeof(workspace_limit)),
      what);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  CU3D_CUBLAS_CHECK(
      cublasLtMatmulAlgoGetHeuristic(handle(), desc.get(), la.get(), lb.get(), ld.get(), ld.get(),
                                     pref.get(), 1, &result, &found),
      what);
  CU3D_CHECK(found > 0, "{}: cuBLASLt has no algorithm for this shape and precision", what);
  void* workspace = result.workspaceSize ? malloc_async(result.workspaceSize, stream) : nullptr;
  const float one = 1.f, zero = 0.f;
  const cublasStatus_t status =
      cublasLtMatmul(handle(), desc.get(), &one, a.data, la.get(), b.data, lb.get(), &zero, d,
                     ld.get(), d, ld.get(), &result.algo, workspace, result.workspaceSize, stream);
  free_async(workspace, stream);
  check(status, "cublasLtMatmul", what);
}

// db[o] = sum over rows i of dy[i * out + o]: one thread per column, rows in order
// (deterministic); consecutive threads read consecutive columns of a row (coalesced).
__global__ void __launch_bounds__(256)
    column_sums(int64_t m, int64_t out, const float* dy, float* db) {
  const int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (o >= out) return;
  float sum = 0.f;
  for (int64_t i = 0; i < m; ++i)
    sum += dy[i * out + o];
  db[o] = sum;
}

std::string describe(const char* pass, int64_t m, int64_t in, int64_t out, Precision p) {
  return fmt::format("dense_{} (m {}, in {}, out {}, {})", pass, m, in, out, to_string(p));
}

void forward(int64_t m, int64_t in, int64_t out, const float* x, const float* w, const float* b,
             float* y, bool relu, Precision p, cudaStream_t stream) {
  const std::string what = describe(relu ? "fwd_relu" : "fwd", m, in, out, p);
  if (m == 0 || out == 0) return;
  const cublasLtEpilogue_t epilogue =
      b ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
        : (relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  matmul({w, in, out, true}, {x, in, m, false}, y, out, m, epilogue, b, p, stream, what);
}

}  // namespace

void dense_fwd(int64_t m, int64_t in, int64_t out, const float* x, const float* w, const float* b,
               float* y, Precision precision, cudaStream_t stream) {
  forward(m, in, out, x, w, b, y, false, precision, stream);
}

void dense_fwd_relu(int64_t m, int64_t in, int64_t out, const float* x, const float* w,
                    const float* b, float* y, Precision precision, cudaStream_t stream) {
  forward(m, in, out, x, w, b, y, true, precision, stream);
}

void dense_bwd(int64_t m, int64_t in, int64_t out, const float* x, const float* w, const float* dy,
               float* dx, float* dw, float* db, Precision precision, cudaStream_t stream) {
  const std::string what = describe("bwd", m, in, out, precision);
  if (m == 0) {  // empty sums: zero gradients (cuBLASLt refuses k = 0)
    if (dw) CU3D_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(float) * in * out, stream));
    if (db) CU3D_CUDA_CHECK(cudaMemsetAsync(db, 0, sizeof(float) * out, stream));
    return;
  }
  if (dx)
    matmul({w, in, out, false}, {dy, out, m, false}, dx, in, m, CUBLASLT_EPILOGUE_DEFAULT, nullptr,
           precision, stream, what);
  if (dw)
    matmul({x, in, m, false}, {dy, out, m, true}, dw, in, out, CUBLASLT_EPILOGUE_DEFAULT, nullptr,
           precision, stream, what);
  if (db) {
    column_sums<<<unsigned((out + 255) / 256), 256, 0, stream>>>(m, out, dy, db);
    check_launch(what);
  }
}

}  // namespace cu3d::cuda
