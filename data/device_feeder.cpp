#include "data/device_feeder.h"

#include <algorithm>
#include <array>
#include <map>
#include <vector>

#include "engine/ops/input.h"
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

// (n, D, H, W, C): the loader's clip layout, the shape normalize_clips takes.
Shape clips_shape(int64_t n, const Recipe& recipe) {
  const auto [d, h, w, c] = clip_shape(recipe);
  return {n, d, h, w, c};
}

// The batch's clip bytes handed back to the loader for its next batch.
void return_clips(Loader& loader, Batch& batch) {
  Batch spent;
  spent.clips = std::move(batch.clips);
  loader.recycle(std::move(spent));
}

}  // namespace

struct DeviceFeeder::Copy {
  Batch host;     // size, labels, videos
  Tensor clips;   // u8 (size, D, H, W, C) on the device
  Tensor labels;  // i32 (size) on the device
  int slot = 0;   // which pinned buffers and event (CUDA)
};

#ifdef CU3D_CUDA
struct DeviceFeeder::Cuda {
  cuda::Stream stream;
  cuda::Event allocated;              // the device buffers' allocation, on the legacy stream
  std::array<cuda::Event, 2> copied;  // per slot: its last copy is done
  std::array<bool, 2> used{false, false};
  // Pinned host buffers by batch size (the last batch of an epoch is smaller), per slot.
  std::map<int64_t, std::array<Tensor, 2>> clips, labels;

  // Stages the batch in the slot's pinned buffers and issues its copy on `stream` into device
  // buffers of `copy` (the ordering is the header's steps 1 and 2).
  void begin(const Batch& batch, const Shape& shape, Device device, Copy& copy) {
    const size_t slot = size_t(copy.slot);
    if (used[slot]) CU3D_CUDA_CHECK(cudaEventSynchronize(copied[slot].get()));
    used[slot] = true;
    const int64_t n = batch.size;
    Tensor& host_clips = clips[n][slot];
    Tensor& host_labels = labels[n][slot];
    if (!host_clips.defined()) {
      host_clips = Tensor::empty(shape, DType::u8, Device::cpu(), true);
      host_labels = Tensor::empty({n}, DType::i32, Device::cpu(), true);
    }
    std::copy_n(batch.clips.data(), host_clips.numel(), host_clips.data<uint8_t>());
    std::copy_n(batch.labels.data(), n, host_labels.data<int32_t>());

    copy.clips = Tensor::empty(shape, DType::u8, device);
    copy.labels = Tensor::empty({n}, DType::i32, device);
    allocated.record(nullptr);
    CU3D_CUDA_CHECK(cudaStreamWaitEvent(stream.get(), allocated.get(), 0));
    CU3D_CUDA_CHECK(cudaMemcpyAsync(copy.clips.raw_data(), host_clips.raw_data(),
                                    copy.clips.nbytes(), cudaMemcpyHostToDevice, stream.get()));
    CU3D_CUDA_CHECK(cudaMemcpyAsync(copy.labels.raw_data(), host_labels.raw_data(),
                                    copy.labels.nbytes(), cudaMemcpyHostToDevice, stream.get()));
    copied[slot].record(stream.get());
  }
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
  // The normalization and the step after it wait for the copy on the device; the host does not.
  if (cuda_)
    CU3D_CUDA_CHECK(
        cudaStreamWaitEvent(compute_stream(), cuda_->copied[size_t(current->slot)].get(), 0));
#endif
  // The u8 buffer, freed with `current` on the legacy stream, is freed after the op in stream
  // order: the compute stream is the legacy stream or, when set, one that synchronizes with it.
  Tensor input = normalize_clips(current->clips, recipe_.mean, recipe_.scale)
                     .reshape(batch_shape(current->host.size, input_));
  pending_ = begin_copy();  // overlaps the caller's step on `current`
  return DeviceBatch{std::move(current->host), std::move(input), std::move(current->labels)};
}

std::unique_ptr<DeviceFeeder::Copy> DeviceFeeder::begin_copy() {
  std::optional<Batch> batch = loader_.next();
  if (!batch) return nullptr;
  auto copy = std::make_unique<Copy>();
  copy->slot = int(copies_++ % 2);
  const int64_t n = batch->size;
  if (cuda_) {
#ifdef CU3D_CUDA
    cuda_->begin(*batch, clips_shape(n, recipe_), device_, *copy);
#endif
  } else {
    // CPU: the clips are the op's input as they are, no copy across devices.
    copy->clips = Tensor::empty(clips_shape(n, recipe_), DType::u8);
    std::copy_n(batch->clips.data(), copy->clips.numel(), copy->clips.data<uint8_t>());
    copy->labels = Tensor::from_vector(
        std::vector<int32_t>(batch->labels.begin(), batch->labels.begin() + n), {n});
  }
  return_clips(loader_, *batch);
  copy->host = std::move(*batch);
  return copy;
}

}  // namespace cu3d::data
