#include "data/device_feeder.h"

#include <algorithm>
#include <array>
#include <map>
#include <vector>

#include "kernels/error.h"
#ifdef CU3D_CUDA
#include "engine/compute.h"
#include "kernels/cuda/runtime.h"
#endif

namespace cu3d::data {
namespace {

Shape batch_shape(int64_t n, const Shape& input) {
  Shape shape{n};
  shape.insert(shape.end(), input.begin(), input.end());
  return shape;
}

// The batch's clip bytes handed back to the loader for its next batch.
void return_clips(Loader& loader, Batch& batch) {
  Batch spent;
  spent.clips = std::move(batch.clips);
  loader.recycle(std::move(spent));
}

}  // namespace

void normalize_clips(const uint8_t* clips, int64_t n, const Recipe& recipe, float* out) {
  const auto [d, h, w, c] = clip_shape(recipe);
  std::vector<float> mean(size_t(c), 0.0f);
  for (size_t k = 0; k < mean.size() && k < recipe.mean.size(); ++k)
    mean[k] = recipe.mean[k];
  const int64_t pixels = n * d * h * w;
  for (int64_t p = 0; p < pixels; ++p)
    for (int k = 0; k < c; ++k)
      out[p * c + k] = (float(clips[p * c + k]) - mean[size_t(k)]) * recipe.scale;
}

struct DeviceFeeder::Copy {
  DeviceBatch batch;
  int slot = 0;  // which pinned buffer and event (CUDA)
};

#ifdef CU3D_CUDA
struct DeviceFeeder::Cuda {
  cuda::Stream stream;
  cuda::Event allocated;              // the device buffers' allocation, on the legacy stream
  std::array<cuda::Event, 2> copied;  // per slot: its last copy is done
  std::array<bool, 2> used{false, false};
  // Pinned host buffers by batch size (the last batch of an epoch is smaller), per slot.
  std::map<int64_t, std::array<Tensor, 2>> inputs, labels;
};
#else
struct DeviceFeeder::Cuda {};
#endif

DeviceFeeder::DeviceFeeder(Loader& loader, const Recipe& recipe, const Shape& input, Device device)
    : loader_(loader), recipe_(recipe), input_(input), device_(device) {
  const auto [d, h, w, c] = clip_shape(recipe);
  CU3D_CHECK(shape_numel(input) == int64_t(d) * h * w * c,
             "the model takes inputs of {} but recipe '{}' cuts clips of [{},{},{},{}]; choose a "
             "matching --depth/--color or model",
             shape_str(input), recipe.name, d, h, w, c);
  if (device.is_cpu()) return;
#ifdef CU3D_CUDA
  CU3D_CUDA_CHECK(cudaSetDevice(device.index));
  cuda_ = std::make_unique<Cuda>();
#else
  throw Error(
      "this cu3d was built without the CUDA backend; rebuild with CUDA or use --device cpu");
#endif
}

DeviceFeeder::~DeviceFeeder() {
  drop_pending();
}

void DeviceFeeder::drop_pending() noexcept {
#ifdef CU3D_CUDA
  // A batch dropped unused frees its device buffers on the legacy stream, which is not ordered
  // after the copy stream: let its copy finish first. (A failure here resurfaces at the next
  // checked CUDA call.)
  if (cuda_ && pending_) cudaStreamSynchronize(cuda_->stream.get());
#endif
  pending_.reset();
}

void DeviceFeeder::start_epoch(int epoch) {
  drop_pending();
  loader_.start_epoch(epoch);
  pending_ = begin_copy();
}

std::optional<DeviceBatch> DeviceFeeder::next() {
  if (!pending_) return std::nullopt;
  std::unique_ptr<Copy> current = std::move(pending_);
#ifdef CU3D_CUDA
  // The step that reads this batch waits for its copy on the device; the host does not.
  if (cuda_)
    CU3D_CUDA_CHECK(
        cudaStreamWaitEvent(compute_stream(), cuda_->copied[size_t(current->slot)].get(), 0));
#endif
  pending_ = begin_copy();  // overlaps the caller's step on `current`
  return std::move(current->batch);
}

std::unique_ptr<DeviceFeeder::Copy> DeviceFeeder::begin_copy() {
  std::optional<Batch> batch = loader_.next();
  if (!batch) return nullptr;
  auto copy = std::make_unique<Copy>();
  copy->slot = int(copies_++ % 2);
  if (!cuda_) {
    // CPU: the normalized tensors are the inputs themselves.
    Tensor input = Tensor::empty(batch_shape(batch->size, input_));
    normalize_clips(batch->clips.data(), batch->size, recipe_, input.data<float>());
    const Tensor labels = Tensor::from_vector(
        std::vector<int32_t>(batch->labels.begin(), batch->labels.begin() + batch->size),
        {batch->size});
    return_clips(loader_, *batch);
    copy->batch = {std::move(*batch), std::move(input), labels};
    return copy;
  }
#ifdef CU3D_CUDA
  Cuda& cuda = *cuda_;
  const size_t slot = size_t(copy->slot);
  // This slot's pinned buffers were last copied two batches ago: wait (normally not at all)
  // before refilling them.
  if (cuda.used[slot]) CU3D_CUDA_CHECK(cudaEventSynchronize(cuda.copied[slot].get()));
  cuda.used[slot] = true;
  const int64_t n = batch->size;
  Tensor& host_input = cuda.inputs[n][slot];
  Tensor& host_labels = cuda.labels[n][slot];
  if (!host_input.defined()) {
    host_input = Tensor::empty(batch_shape(n, input_), DType::f32, Device::cpu(), true);
    host_labels = Tensor::empty({n}, DType::i32, Device::cpu(), true);
  }
  normalize_clips(batch->clips.data(), n, recipe_, host_input.data<float>());
  std::copy(batch->labels.begin(), batch->labels.begin() + n, host_labels.data<int32_t>());
  return_clips(loader_, *batch);

  Tensor input = Tensor::empty(host_input.shape(), DType::f32, device_);
  Tensor labels = Tensor::empty({n}, DType::i32, device_);
  // The device buffers come from the stream-ordered pool on the legacy stream; the copy stream
  // (non-blocking) must not write them before that allocation point.
  cuda.allocated.record(nullptr);
  CU3D_CUDA_CHECK(cudaStreamWaitEvent(cuda.stream.get(), cuda.allocated.get(), 0));
  CU3D_CUDA_CHECK(cudaMemcpyAsync(input.raw_data(), host_input.raw_data(), input.nbytes(),
                                  cudaMemcpyHostToDevice, cuda.stream.get()));
  CU3D_CUDA_CHECK(cudaMemcpyAsync(labels.raw_data(), host_labels.raw_data(), labels.nbytes(),
                                  cudaMemcpyHostToDevice, cuda.stream.get()));
  cuda.copied[slot].record(cuda.stream.get());
  copy->batch = {std::move(*batch), std::move(input), std::move(labels)};
#endif
  return copy;
}

}  // namespace cu3d::data
