#include "engine/protobuf_writer.h"

#include <cstring>

namespace cu3d {
namespace {

// Wire types of the protobuf encoding.
constexpr int kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

template <typename T>
void append_little_endian(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // every target cu3d builds for is little-endian
  out.append(bytes, sizeof(T));
}

}  // namespace

void ProtoWriter::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    out_.push_back(char(0x80 | (value & 0x7f)));
    value >>= 7;
  }
  out_.push_back(char(value));
}

void ProtoWriter::key(int field, int wire_type) {
  raw_varint(uint64_t(field) << 3 | uint64_t(wire_type));
}

ProtoWriter& ProtoWriter::varint(int field, uint64_t value) {
  key(field, kVarint);
  raw_varint(value);
  return *this;
}

ProtoWriter& ProtoWriter::float32(int field, float value) {
  key(field, kFixed32);
  append_little_endian(out_, value);
  return *this;
}

ProtoWriter& ProtoWriter::float64(int field, double value) {
  key(field, kFixed64);
  append_little_endian(out_, value);
  return *this;
}

ProtoWriter& ProtoWriter::bytes(int field, std::string_view value) {
  key(field, kLengthDelimited);
  raw_varint(value.size());
  out_.append(value);
  return *this;
}

}  // namespace cu3d
