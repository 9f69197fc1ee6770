#include "kernels/cpu/softmax_xent.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/softmax.h"
#include "kernels/error.h"

namespace cu3d::cpu {
namespace {

// Serial and before any parallel region: an exception cannot leave an OpenMP loop.
void check_labels(const SoftmaxXentShape& s, const int32_t* labels) {
  for (int64_t r = 0; r < s.rows; ++r) {
    CU3D_CHECK(labels[r] >= 0 && labels[r] < s.classes,
               "softmax_cross_entropy: label {} in row {} is outside [0, {}) for logits of shape "
               "({}, {}); labels must be class indices",
               labels[r], r, s.classes, s.rows, s.classes);
  }
}

}  // namespace

template <typename T>
void softmax_xent_fwd(const SoftmaxXentShape& s, const T* logits, const int32_t* labels, T* probs,
                      T* loss) {
  check_labels(s, labels);
  const int classes = s.classes;
  // Per-row losses summed serially afterwards: an OpenMP reduction's order is unspecified,
  // and the loss must not depend on the thread count.
  std::vector<double> row_loss(s.rows);
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
    const T* zr = logits + r * classes;
    const RowMaxSum<T> row = softmax_row(zr, classes, probs + r * classes);
    // -log p[label] = log(sum) - (z[label] - max), both terms finite for any logits.
    row_loss[r] = std::log(row.sum) - (double(zr[labels[r]]) - double(row.max));
  }
  double total = 0.0;
  for (double l : row_loss)
    total += l;
  loss[0] = T(total / double(s.rows));
}

template <typename T>
void softmax_xent_bwd(const SoftmaxXentShape& s, const T* probs, const int32_t* labels,
                      const T* dloss, T* dlogits) {
  check_labels(s, labels);
  const int classes = s.classes;
  const T scale = T(double(dloss[0]) / double(s.rows));
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMinElements)
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int j = 0; j < classes; ++j)
      dlogits[r * classes + j] = probs[r * classes + j] * scale;
    dlogits[r * classes + labels[r]] -= scale;
  }
}

#define CU3D_INSTANTIATE(T)                                                                      \
  template void softmax_xent_fwd<T>(const SoftmaxXentShape&, const T*, const int32_t*, T*, T*);  \
  template void softmax_xent_bwd<T>(const SoftmaxXentShape&, const T*, const int32_t*, const T*, \
                                    T*);
CU3D_INSTANTIATE(float)
CU3D_INSTANTIATE(double)
#undef CU3D_INSTANTIATE

}  // namespace cu3d::cpu
