// Data-parallel gradient averaging overlapped with backward. The parameters are grouped into
// buckets of about `bucket_mb` in the order backward finishes them (the reverse of registration);
// the tape's grad-ready hook counts each bucket down, and a full bucket is packed into one flat
// buffer and its all-reduce started at once, while backward goes on with the layers below.
// finish() starts what is left (a parameter that got no gradient this step contributes zeros),
// waits, and writes the averages back into the gradients, before the optimizer step.
#pragma once

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/autograd.h"
#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace cu3d::dist {

struct ReducerOptions {
  double bucket_mb = 25;  // PyTorch DDP's default: large enough to amortize a collective's latency
  WireType wire = WireType::f32;
};

class GradReducer {
 public:
  // `params` are leaves that require gradients, all on one device.
  GradReducer(Communicator& comm, std::vector<Tensor> params, ReducerOptions options);
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // For autograd::backward; the reducer must outlive the backward call.
  autograd::GradReadyFn hook();
  void grad_ready(const Tensor& param);
  // Every bucket reduced and every gradient averaged over the ranks.
  void finish();

  std::size_t bucket_count() const { return buckets_.size(); }
  // Buckets whose all-reduce was started by the hook, during backward, in the last step.
  std::size_t launched_during_backward() const { return last_launched_early_; }

 private:
  struct Bucket {
    std::vector<std::size_t> params;   // indices into params_
    std::vector<std::size_t> offsets;  // element offset of each in `buffer`
    Tensor buffer;                     // f32, on the device the communicator takes
    Tensor wire;                       // bf16 copy of `buffer` when the wire type is bf16
    std::size_t waiting = 0;           // parameters whose gradient is not final yet
    std::unique_ptr<Request> request;
  };
  void launch(Bucket& bucket);
  void unpack(Bucket& bucket);
  void reset();

  Communicator& comm_;
  std::vector<Tensor> params_;
  ReducerOptions options_;
  Device staging_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, std::size_t> bucket_of_;  // parameter -> its bucket
  std::size_t launched_early_ = 0, last_launched_early_ = 0;
  bool in_backward_ = true;
};

}  // namespace cu3d::dist
