#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/atomic_file.h"
#include "engine/rng.h"
#include "engine/safetensors.h"

namespace cu3d {
namespace {
namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / fmt::format("cu3d_test_{}_{}", ::getpid(), name);
}

// A file image: length prefix + header + data bytes.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes(8 + header.size() + data_bytes, 0x5a);
  for (int i = 0; i < 8; ++i)
    bytes[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  Generator gen(3);
  NamedTensors tensors = {
      {"conv1.weight", Tensor::uniform({4, 3, 3, 3, 2}, -1, 1, gen)},
      {"conv1.bias", Tensor::uniform({4}, -1, 1, gen, DType::f64)},
      {"half", Tensor::uniform({5}, -1, 1, gen).to(DType::bf16)},
      {"f16", Tensor::uniform({3}, -1, 1, gen).to(DType::f16)},
      {"labels", Tensor::from_vector<int32_t>({3, 1, 4}, {3})},
      {"step", Tensor::from_vector<int64_t>({123456789012}, {})},
      {"pixels", Tensor::from_vector<uint8_t>({0, 255, 7}, {3})},
  };
  const fs::path path = temp_path("roundtrip.safetensors");
  save_safetensors(path, tensors, {{"model", "c3d"}});
  const SafetensorsContents loaded = load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(loaded.tensors[i].first, tensors[i].first) << "file order is kept";
    const Tensor& a = tensors[i].second;
    const Tensor& b = loaded.tensors[i].second;
    EXPECT_EQ(b.str(), a.str());
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0) << tensors[i].first;
  }
  EXPECT_EQ(loaded.metadata.at("model"), "c3d");
  // The in-memory parser reads the same file identically.
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(parse_safetensors(bytes, path.string()).tensors.size(), tensors.size());
  fs::remove(path);
}

TEST(Safetensors, HostileFilesGiveNamedErrors) {
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(error_of(image(ok, 8)), "");
  EXPECT_NE(error_of({1, 2, 3}).find("too short"), std::string::npos);
  // A header that claims a terabyte allocates nothing.
  std::vector<uint8_t> huge = image(ok, 8);
  huge[5] = 1;
  EXPECT_NE(error_of(huge).find("header claims"), std::string::npos);
  EXPECT_NE(error_of(image("{not json", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(image(ok, 4)).find("outside"), std::string::npos);
  EXPECT_NE(error_of(image(ok, 12)).find("trailing"), std::string::npos);
  EXPECT_NE(error_of(image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16))
                .find("needs 12 bytes"),
            std::string::npos);
  EXPECT_NE(
      error_of(image(R"({"w":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}})", 2)).find("'Q8'"),
      std::string::npos);
  EXPECT_NE(error_of(image(R"({"w":{"dtype":"F32","shape":[1099511627776],)"
                           R"("data_offsets":[0,8]}})",
                           8))
                .find("below 2^40"),
            std::string::npos);
  EXPECT_NE(error_of(image(R"({"w":{"dtype":"F32","shape":[1099511627775,1099511627775],)"
                           R"("data_offsets":[0,8]}})",
                           8))
                .find("more bytes than the file holds"),
            std::string::npos);
  EXPECT_NE(error_of(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                           6))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of(image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8))
                .find("non-negative"),
            std::string::npos);
  EXPECT_NE(error_of(image(R"([1,2])", 0)).find("JSON object"), std::string::npos);
  EXPECT_NE(error_of(image(R"({"__metadata__":{"k":1}})", 0)).find("must be a string"),
            std::string::npos);
}

TEST(Safetensors, MissingFileNamesIt) {
  try {
    load_safetensors("/nonexistent/run/last.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/run/last.safetensors"), std::string::npos);
  }
}

TEST(AtomicFile, FailedWriteLeavesThePreviousFile) {
  const fs::path path = temp_path("atomic.txt");
  write_atomically(path, std::string_view("first"));
  EXPECT_THROW(write_atomically(path, [](std::FILE*) { throw Error("disk full"); }), Error);
  std::ifstream in(path);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "first");
  for (const auto& entry : fs::directory_iterator(path.parent_path()))
    EXPECT_EQ(entry.path().string().find(path.string() + ".tmp"), std::string::npos)
        << "temporary left behind: " << entry.path();
  fs::remove(path);
}

}  // namespace
}  // namespace cu3d
