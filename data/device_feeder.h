// Loader batches on the training device, the next batch's host-to-device copy overlapping the
// current step.
//
// What crosses PCIe is each batch's uint8 clips (1 byte per pixel, a quarter of the floats the
// model takes) and its int32 labels; the device makes the floats with the engine's
// normalize_clips op ((pixel - mean[c]) * scale, the recipe's; engine/ops/input.h). On CUDA, in
// this order:
//   1. begin_copy: the loader's clip bytes (pageable) are staged into one of two pinned uint8
//      buffers per batch size (page-locked: the DMA engine reads them directly, so the copy is
//      asynchronous); a buffer is refilled only after the event of its previous copy, two
//      batches ago, has completed (normally without waiting).
//   2. The feeder's own stream waits on an event after the device buffers' allocation (they come
//      from the stream-ordered pool on the legacy stream), copies clips and labels, and records
//      the slot's `copied` event.
//   3. next(): the compute stream waits on that event (a device-side wait, the host goes on),
//      then normalize_clips runs on the compute stream; only then is batch k+1's copy issued, so
//      that copy runs while the caller's step k computes.
// On the CPU, the same op normalizes the loader's clips, so both paths share one definition.
#pragma once

#include <memory>
#include <optional>

#include "data/loader.h"
#include "data/recipe.h"
#include "engine/device.h"
#include "engine/tensor.h"

namespace cu3d::data {

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
