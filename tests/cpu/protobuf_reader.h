// A protobuf wire-format reader for tests: checks that what engine/protobuf_writer.h wrote (ONNX
// models, TensorBoard events) decodes field by field, without libprotobuf.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cu3d::testing_proto {

struct Field {
  int number = 0;
  int wire = 0;
  uint64_t value = 0;      // varint, or the bits of a fixed32/fixed64
  std::string_view bytes;  // length-delimited
  float as_float() const {
    float f;
    const uint32_t bits = uint32_t(value);
    std::memcpy(&f, &bits, 4);
    return f;
  }
  double as_double() const {
    double d;
    std::memcpy(&d, &value, 8);
    return d;
  }
};

inline uint64_t read_varint(std::string_view data, size_t& at) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= data.size()) throw std::runtime_error("truncated varint");
    const uint8_t byte = uint8_t(data[at++]);
    value |= uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  throw std::runtime_error("varint longer than 10 bytes");
}

inline uint64_t read_fixed(std::string_view data, size_t& at, int bytes) {
  if (at + size_t(bytes) > data.size()) throw std::runtime_error("truncated fixed field");
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= uint64_t(uint8_t(data[at + size_t(i)])) << (8 * i);
  at += size_t(bytes);
  return value;
}

// Every field of one message, in order; throws std::runtime_error on malformed input.
inline std::vector<Field> parse(std::string_view data) {
  std::vector<Field> fields;
  for (size_t at = 0; at < data.size();) {
    const uint64_t key = read_varint(data, at);
    Field f;
    f.number = int(key >> 3);
    f.wire = int(key & 7);
    if (f.wire == 0) {
      f.value = read_varint(data, at);
    } else if (f.wire == 1) {
      f.value = read_fixed(data, at, 8);
    } else if (f.wire == 5) {
      f.value = read_fixed(data, at, 4);
    } else if (f.wire == 2) {
      const uint64_t size = read_varint(data, at);
      if (size > data.size() - at) throw std::runtime_error("length beyond the message");
      f.bytes = data.substr(at, size_t(size));
      at += size_t(size);
    } else {
      throw std::runtime_error("unknown wire type " + std::to_string(f.wire));
    }
    fields.push_back(f);
  }
  return fields;
}

inline std::vector<Field> all(const std::vector<Field>& fields, int number) {
  std::vector<Field> out;
  for (const Field& f : fields)
    if (f.number == number) out.push_back(f);
  return out;
}

// The only field `number`; throws when it is absent or repeated.
inline Field one(const std::vector<Field>& fields, int number) {
  const std::vector<Field> found = all(fields, number);
  if (found.size() != 1)
    throw std::runtime_error("field " + std::to_string(number) + " occurs " +
                             std::to_string(found.size()) + " times");
  return found[0];
}

}  // namespace cu3d::testing_proto
