#include "kernels/cpu/gemm.h"

#include <climits>

#include <cblas.h>

#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

// cblas takes 32-bit sizes (Debian's OpenBLAS uses the LP64 interface).
int as_blas_int(int64_t v, const char* name) {
  CU3D_CHECK(v >= 0 && v <= INT_MAX,
             "gemm: {} = {} does not fit BLAS's 32-bit int; split the product into smaller blocks",
             name, v);
  return static_cast<int>(v);
}

CBLAS_TRANSPOSE op(bool trans) {
  return trans ? CblasTrans : CblasNoTrans;
}

}  // namespace

template <>
void gemm<float>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  cblas_sgemm(CblasRowMajor, op(trans_a), op(trans_b), as_blas_int(m, "m"), as_blas_int(n, "n"),
              as_blas_int(k, "k"), alpha, a, as_blas_int(lda, "lda"), b, as_blas_int(ldb, "ldb"),
              beta, c, as_blas_int(ldc, "ldc"));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                  double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, op(trans_a), op(trans_b), as_blas_int(m, "m"), as_blas_int(n, "n"),
              as_blas_int(k, "k"), alpha, a, as_blas_int(lda, "lda"), b, as_blas_int(ldb, "ldb"),
              beta, c, as_blas_int(ldc, "ldc"));
}

}  // namespace cu3d::cpu
