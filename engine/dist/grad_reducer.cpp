#include "engine/dist/grad_reducer.h"

#include "engine/ops/elementwise.h"
#include "engine/storage.h"
#include "kernels/error.h"

namespace cu3d::dist {

GradReducer::GradReducer(Communicator& comm, std::vector<Tensor> params, ReducerOptions options)
    : comm_(comm), params_(std::move(params)), options_(options) {
  CU3D_CHECK(options.bucket_mb > 0, "--bucket-mb {} must be positive", options.bucket_mb);
  CU3D_CHECK(!params_.empty(), "data parallel: the model has no parameters to reduce");
  const Device device = params_.front().device();
  staging_ = comm_.accepts(device) ? device : Device::cpu();
  const double bucket_bytes = options.bucket_mb * 1024 * 1024;
  std::size_t elements = 0;
  for (std::size_t i = params_.size(); i-- > 0;) {
    const Tensor& p = params_[i];
    CU3D_CHECK(p.dtype() == DType::f32 && p.device() == device,
               "data parallel: parameter {} is {}; all parameters must be f32 on {}", i, p.str(),
               device.str());
    if (buckets_.empty() || double(elements) * 4 >= bucket_bytes) {
      buckets_.emplace_back();
      elements = 0;
    }
    Bucket& b = buckets_.back();
    b.params.push_back(i);
    b.offsets.push_back(elements);
    elements += std::size_t(p.numel());
    bucket_of_[p.impl()] = buckets_.size() - 1;
  }
  for (Bucket& b : buckets_) {
    const std::size_t last = b.params.back();
    b.buffer =
        Tensor::zeros({int64_t(b.offsets.back()) + params_[last].numel()}, DType::f32, staging_);
  }
  reset();
}

autograd::GradReadyFn GradReducer::hook() {
  return [this](const Tensor& leaf) { grad_ready(leaf); };
}

void GradReducer::grad_ready(const Tensor& param) {
  const auto it = bucket_of_.find(param.impl());
  if (it == bucket_of_.end()) return;  // an input marked for a gradient, not a parameter
  Bucket& bucket = buckets_[it->second];
  if (bucket.waiting > 0 && --bucket.waiting == 0) launch(bucket);
  // MPI moves non-blocking collectives forward only inside MPI calls.
  for (Bucket& b : buckets_)
    if (b.request) b.request->test();
}

void GradReducer::launch(Bucket& bucket) {
  bucket.waiting = 0;
  launched_early_ += in_backward_;
  for (std::size_t k = 0; k < bucket.params.size(); ++k) {
    const Tensor& p = params_[bucket.params[k]];
    if (!p.grad().defined()) Tensor(p).set_grad(Tensor::zeros_like(p));
    const Tensor g = p.grad();
    copy_bytes(static_cast<float*>(bucket.buffer.raw_data()) + bucket.offsets[k], staging_,
               g.raw_data(), g.device(), g.nbytes());
  }
  Tensor* send = &bucket.buffer;
  if (options_.wire == WireType::bf16) {
    bucket.wire = bucket.buffer.to(DType::bf16);
    send = &bucket.wire;
  }
  bucket.request =
      comm_.all_reduce_sum_async(send->raw_data(), std::size_t(send->numel()), options_.wire);
}

void GradReducer::unpack(Bucket& bucket) {
  bucket.request->wait();
  bucket.request.reset();
  if (options_.wire == WireType::bf16) bucket.buffer.copy_from(bucket.wire.to(DType::f32));
  const Tensor mean = scale(bucket.buffer, 1.0 / double(comm_.size()));
  for (std::size_t k = 0; k < bucket.params.size(); ++k) {
    const Tensor g = params_[bucket.params[k]].grad();
    copy_bytes(g.raw_data(), g.device(),
               static_cast<const float*>(mean.raw_data()) + bucket.offsets[k], staging_,
               g.nbytes());
  }
}

void GradReducer::finish() {
  in_backward_ = false;
  for (Bucket& b : buckets_)
    if (!b.request) launch(b);
  for (Bucket& b : buckets_)
    unpack(b);
  last_launched_early_ = launched_early_;
  reset();
}

void GradReducer::reset() {
  for (Bucket& b : buckets_)
    b.waiting = b.params.size();
  launched_early_ = 0;
  in_backward_ = true;
}

}  // namespace cu3d::dist
