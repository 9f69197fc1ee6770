// Loader batches on the training device, the next batch's host-to-device copy overlapping the
// current step.
//
// Each batch's clips are normalized on the host ((pixel - mean[c]) * scale, the recipe's) into a
// float tensor. On CUDA that tensor is pinned (page-locked: the DMA engine reads it directly, and
// the copy is asynchronous), it is copied on the feeder's own stream, and the compute stream waits
// on the copy's event, not the host. next() hands out batch k and issues batch k+1's copy before
// returning, so that copy runs while the caller's step k computes. Two pinned buffers per batch
// size alternate; a buffer is refilled only after its previous copy's event has completed. On the
// CPU, next() is a plain pass-through: the normalized tensors are the model's inputs.
//
// The copy carries floats (4 bytes per pixel): uint8 clips with the normalization on the device
// would carry a quarter of that, once the engine has a uint8 -> float normalize kernel.
#pragma once

#include <memory>
#include <optional>

#include "data/loader.h"
#include "data/recipe.h"
#include "engine/device.h"
#include "engine/tensor.h"

namespace cu3d::data {

// (pixel - mean[c]) * scale for n clips of the recipe's clip shape into `out` (float, same
// element count), channels last.
void normalize_clips(const uint8_t* clips, int64_t n, const Recipe& recipe, float* out);

struct DeviceBatch {
  Batch host;     // size, labels, videos (the clip bytes are back in the loader)
  Tensor input;   // f32 (size, input...) on the device, normalized
  Tensor labels;  // i32 (size) on the device
};

class DeviceFeeder {
 public:
  // `input` is the model's per-clip input shape, whose element count must be the recipe's clip
  // size. `loader` must outlive the feeder. Throws cu3d::Error when they do not match.
  DeviceFeeder(Loader& loader, const Recipe& recipe, const Shape& input, Device device);
  ~DeviceFeeder();
  DeviceFeeder(const DeviceFeeder&) = delete;
  DeviceFeeder& operator=(const DeviceFeeder&) = delete;

  // Starts the loader's epoch and the first batch's copy.
  void start_epoch(int epoch);
  // The epoch's next batch on the device, or nothing at the end of the epoch.
  std::optional<DeviceBatch> next();

 private:
  struct Copy;  // a batch whose copy is in flight
  std::unique_ptr<Copy> begin_copy();
  void drop_pending() noexcept;

  Loader& loader_;
  Recipe recipe_;
  Shape input_;
  Device device_;
  std::unique_ptr<Copy> pending_;
  int64_t copies_ = 0;
  struct Cuda;  // stream, events and pinned buffers (CUDA builds)
  std::unique_ptr<Cuda> cuda_;
};

}  // namespace cu3d::data
