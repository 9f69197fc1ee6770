#include "engine/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"

namespace cu3d {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The reference implementation refuses headers over 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::u8:
      return "U8";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
  }
  return "?";
}

// One tensor's description, validated against the data section.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // byte offsets within the data section
};

DType parse_dtype(const json& value, const std::string& where) {
  CU3D_CHECK(value.is_string(), "{}: dtype must be a string", where);
  const std::string text = value.get<std::string>();
  for (DType d :
       {DType::f32, DType::f64, DType::bf16, DType::f16, DType::u8, DType::i32, DType::i64})
    if (text == safetensors_dtype(d)) return d;
  throw Error(fmt::format("{}: dtype '{}' is not supported (F32, F64, BF16, F16, U8, I32, I64)",
                          where, text));
}

Shape parse_shape(const json& value, const std::string& where) {
  CU3D_CHECK(value.is_array() && value.size() <= size_t(kMaxDims),
             "{}: shape must be an array of at most {} sizes", where, kMaxDims);
  Shape shape;
  // Each extent is bounded so their product cannot overflow before it is checked against the
  // file's length.
  for (const json& extent : value) {
    CU3D_CHECK(extent.is_number_unsigned() && extent.get<uint64_t>() < (uint64_t(1) << 40),
               "{}: shape entries must be non-negative integers below 2^40", where);
    shape.push_back(int64_t(extent.get<uint64_t>()));
  }
  return shape;
}

std::vector<Entry> parse_header(const std::string& text, uint64_t data_bytes,
                                const std::string& name, std::map<std::string, std::string>* meta) {
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: the safetensors header is not valid JSON ({})", name, e.what()));
  }
  CU3D_CHECK(header.is_object(), "{}: the safetensors header must be a JSON object", name);
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    const std::string where = fmt::format("{}: tensor '{}'", name, key);
    if (key == "__metadata__") {
      CU3D_CHECK(value.is_object(), "{}: __metadata__ must be an object", name);
      for (const auto& [mkey, mvalue] : value.items()) {
        CU3D_CHECK(mvalue.is_string(), "{}: __metadata__ value '{}' must be a string", name, mkey);
        (*meta)[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    CU3D_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") &&
                   value.contains("data_offsets"),
               "{}: needs dtype, shape and data_offsets", where);
    Entry e{key, parse_dtype(value["dtype"], where), parse_shape(value["shape"], where), 0, 0};
    const json& offsets = value["data_offsets"];
    CU3D_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                   offsets[1].is_number_unsigned(),
               "{}: data_offsets must be two non-negative integers", where);
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    CU3D_CHECK(e.begin <= e.end && e.end <= data_bytes,
               "{}: data_offsets [{}, {}] fall outside the {} data bytes the file holds", where,
               e.begin, e.end, data_bytes);
    // The extents are below 2^40 each and the byte count at most the file's, so check the
    // product incrementally to avoid overflow.
    uint64_t bytes = dtype_size(e.dtype);
    for (int64_t extent : e.shape) {
      CU3D_CHECK(extent == 0 || bytes <= data_bytes / uint64_t(extent) + 1,
                 "{}: shape {} needs more bytes than the file holds", where, shape_str(e.shape));
      bytes *= uint64_t(extent);
    }
    CU3D_CHECK(bytes == e.end - e.begin, "{}: shape {} of {} needs {} bytes, data_offsets span {}",
               where, shape_str(e.shape), dtype_name(e.dtype), bytes, e.end - e.begin);
    entries.push_back(std::move(e));
  }
  // The format requires the tensors to tile the data section exactly: no overlap, no holes.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    CU3D_CHECK(e.begin == expected,
               "{}: tensor '{}' starts at byte {}, expected {} (overlap or hole)", name, e.name,
               e.begin, expected);
    expected = e.end;
  }
  CU3D_CHECK(expected == data_bytes, "{}: {} trailing data bytes belong to no tensor", name,
             data_bytes - expected);
  return entries;
}

std::string header_json(const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CU3D_CHECK(!header.contains(name) && name != "__metadata__",
               "save_safetensors: duplicate or reserved tensor name '{}'", name);
    header[name] = {{"dtype", safetensors_dtype(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  return text;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i)
    value = (value << 8) | p[i];
  return value;
}

// Reads the length prefix and the header; returns the header text.
std::string read_header_text(std::span<const uint8_t> prefix, uint64_t file_bytes,
                             const std::function<void(uint64_t, char*)>& read,
                             const std::string& name, uint64_t* header_bytes) {
  CU3D_CHECK(file_bytes >= 8, "{}: {} bytes is too short for a safetensors file", name, file_bytes);
  *header_bytes = read_u64_le(prefix.data());
  CU3D_CHECK(*header_bytes <= kMaxHeaderBytes && *header_bytes <= file_bytes - 8,
             "{}: the header claims {} bytes but the file has {} (corrupt or not safetensors)",
             name, *header_bytes, file_bytes);
  std::string text(*header_bytes, '\0');
  read(*header_bytes, text.data());
  return text;
}

}  // namespace

void save_safetensors(const fs::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = header_json(tensors, metadata);
  write_atomically(path, [&](std::FILE* file) {
    uint8_t prefix[8];
    for (int i = 0; i < 8; ++i)
      prefix[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
    write_bytes(file, prefix, 8, path);
    write_bytes(file, header.data(), header.size(), path);
    for (const auto& [name, t] : tensors) {
      const Tensor host = t.to(Device::cpu());
      write_bytes(file, host.raw_data(), host.nbytes(), path);
    }
  });
}

SafetensorsContents parse_safetensors(std::span<const uint8_t> bytes, const std::string& name) {
  uint64_t header_bytes = 0;
  const std::string text = read_header_text(
      bytes, bytes.size(), [&](uint64_t n, char* out) { std::memcpy(out, bytes.data() + 8, n); },
      name, &header_bytes);
  SafetensorsContents contents;
  const uint64_t data_start = 8 + header_bytes;
  for (const Entry& e : parse_header(text, bytes.size() - data_start, name, &contents.metadata)) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    std::memcpy(t.raw_data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    contents.tensors.emplace_back(e.name, std::move(t));
  }
  return contents;
}

SafetensorsContents load_safetensors(const fs::path& path) {
  const std::string name = path.string();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  CU3D_CHECK(file, "could not open checkpoint {}: {}", name, std::strerror(errno));
  std::error_code ec;
  const uint64_t file_bytes = fs::file_size(path, ec);
  CU3D_CHECK(!ec, "could not read the size of {}: {}", name, ec.message());
  auto read_exactly = [&](uint64_t n, char* out) {
    CU3D_CHECK(std::fread(out, 1, n, file.get()) == n, "{}: unexpected end of file", name);
  };
  uint8_t prefix[8] = {};
  if (file_bytes >= 8) read_exactly(8, reinterpret_cast<char*>(prefix));
  uint64_t header_bytes = 0;
  const std::string text = read_header_text(prefix, file_bytes, read_exactly, name, &header_bytes);
  SafetensorsContents contents;
  const uint64_t data_start = 8 + header_bytes;
  for (const Entry& e : parse_header(text, file_bytes - data_start, name, &contents.metadata)) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    CU3D_CHECK(std::fseek(file.get(), long(data_start + e.begin), SEEK_SET) == 0,
               "{}: cannot seek to tensor '{}'", name, e.name);
    read_exactly(e.end - e.begin, static_cast<char*>(t.raw_data()));
    contents.tensors.emplace_back(e.name, std::move(t));
  }
  return contents;
}

}  // namespace cu3d
