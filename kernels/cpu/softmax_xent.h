// Fused softmax + cross-entropy with integer labels, averaged over rows:
//   loss = (1/rows) * sum_r [ logsumexp(logits[r, :]) - logits[r, labels[r]] ]
// logits and probs are (rows, classes); labels are (rows) int32 class indices. The loss is
// computed from the log-sum-exp of max-subtracted logits, so logits of any magnitude give a
// finite loss (no exp overflow, no log(0)). The forward saves the probabilities, from which
//   dlogits = (probs - onehot(labels)) * dloss / rows.
// A label outside [0, classes) throws cu3d::Error naming the row, the label and the class
// count, before anything is written.
//
// Cost per element: forward 1 exp + ~4 FLOPs, reads logits, writes probs: 2*E*sizeof(T) bytes;
// backward 2 FLOPs, reads probs, writes dlogits: 2*E*sizeof(T) bytes (E = rows*classes).
#pragma once

#include <cstdint>

namespace cu3d::cpu {

struct SoftmaxXentShape {
  int64_t rows = 1;
  int classes = 1;

  int64_t size() const { return rows * classes; }
};

// Writes probs (rows, classes) and the mean loss to loss[0].
template <typename T>
void softmax_xent_fwd(const SoftmaxXentShape& s, const T* logits, const int32_t* labels, T* probs,
                      T* loss);

// dloss points to the scalar gradient of the loss (1 for a plain backward).
template <typename T>
void softmax_xent_bwd(const SoftmaxXentShape& s, const T* probs, const int32_t* labels,
                      const T* dloss, T* dlogits);

}  // namespace cu3d::cpu
