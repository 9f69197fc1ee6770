// A minimal protocol-buffers encoder for the two formats cu3d writes without libprotobuf: ONNX
// models (layers/export_onnx.h) and TensorBoard event files (apps/tensorboard_events.h). Both
// are small, stable schemas, and one page of encoder spares every build a protoc step and a
// generated-code dependency. Only the wire types they use: varint, 64-bit (double), 32-bit
// (float) and length-delimited (strings, bytes, nested messages). Repeated scalars are written
// unpacked (one key per element), which every parser accepts for proto2 and proto3 alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cu3d {

class ProtoWriter {
 public:
  // int32/int64/uint64/bool/enum fields; a negative int64 is its two's complement (10 bytes).
  ProtoWriter& varint(int field, uint64_t value);
  ProtoWriter& float32(int field, float value);
  ProtoWriter& float64(int field, double value);
  ProtoWriter& bytes(int field, std::string_view value);
  ProtoWriter& message(int field, const ProtoWriter& nested) { return bytes(field, nested.data()); }

  const std::string& data() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void key(int field, int wire_type);
  void raw_varint(uint64_t value);

  std::string out_;
};

}  // namespace cu3d
