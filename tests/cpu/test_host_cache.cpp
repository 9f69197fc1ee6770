// engine/host_cache: large host blocks are reused (no fresh mmap and page faults per training
// step), small ones are not cached, released blocks leave the cache, and the bytes in use and
// their peak are counted.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "engine/host_cache.h"
#include "engine/tensor.h"

namespace cu3d {
namespace {

constexpr std::size_t kBig = 3 * kHostCacheMinBytes + 100;

class HostCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (host_cache_limit() < 4 * kBig) GTEST_SKIP() << "CU3D_HOST_CACHE_MB is set too low";
    host_cache_release();
  }
  void TearDown() override { host_cache_release(); }
};

TEST_F(HostCacheTest, ReusesAFreedBlockOfTheSameSize) {
  void* a = host_cache_alloc(kBig);
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, kBig);
  host_cache_free(a, kBig);
  EXPECT_GE(host_cache_cached_bytes(), kBig);
  void* b = host_cache_alloc(kBig);
  EXPECT_EQ(a, b);
  EXPECT_EQ(host_cache_cached_bytes(), 0u);
  host_cache_free(b, kBig);
}

TEST_F(HostCacheTest, DoesNotHandOutABlockOfAnotherSize) {
  void* a = host_cache_alloc(kBig);
  host_cache_free(a, kBig);
  void* b = host_cache_alloc(2 * kBig);
  EXPECT_NE(a, b);
  EXPECT_GE(host_cache_cached_bytes(), kBig);  // a is still kept for its own size
  host_cache_free(b, 2 * kBig);
}

TEST_F(HostCacheTest, SmallBlocksAreNotCached) {
  void* a = host_cache_alloc(kHostCacheMinBytes / 2);
  host_cache_free(a, kHostCacheMinBytes / 2);
  EXPECT_EQ(host_cache_cached_bytes(), 0u);
}

TEST_F(HostCacheTest, CountsTheBytesInUseAndTheirPeak) {
  // Sizes that are whole 64-byte lines, so the counts are exact.
  constexpr std::size_t kLarge = 3 * kHostCacheMinBytes, kSmall = 4096;
  host_cache_reset_peak();
  const std::size_t before = host_cache_used_bytes();
  EXPECT_EQ(host_cache_peak_used_bytes(), before);
  void* a = host_cache_alloc(kLarge);
  void* b = host_cache_alloc(kSmall);
  EXPECT_EQ(host_cache_used_bytes(), before + kLarge + kSmall);
  host_cache_free(a, kLarge);
  EXPECT_EQ(host_cache_used_bytes(), before + kSmall) << "a block kept for reuse is not in use";
  EXPECT_EQ(host_cache_peak_used_bytes(), before + kLarge + kSmall);
  void* c = host_cache_alloc(kLarge);  // a's block again, from the cache
  EXPECT_EQ(host_cache_used_bytes(), before + kLarge + kSmall);
  host_cache_free(c, kLarge);
  host_cache_reset_peak();
  EXPECT_EQ(host_cache_peak_used_bytes(), before + kSmall);
  host_cache_free(b, kSmall);
  EXPECT_EQ(host_cache_used_bytes(), before);
}

TEST_F(HostCacheTest, ReleaseEmptiesTheCache) {
  void* a = host_cache_alloc(kBig);
  void* b = host_cache_alloc(kBig);
  host_cache_free(a, kBig);
  host_cache_free(b, kBig);
  EXPECT_GE(host_cache_cached_bytes(), 2 * kBig);
  host_cache_release();
  EXPECT_EQ(host_cache_cached_bytes(), 0u);
}

// What a training step relies on: the storage of a dropped tensor backs the next one of its size.
TEST_F(HostCacheTest, TensorsReuseTheStorageOfDroppedTensors) {
  const Shape shape{int64_t(kBig / 4)};
  const void* first = nullptr;
  {
    Tensor t = Tensor::zeros(shape);
    first = t.data<float>();
  }
  Tensor again = Tensor::full(shape, 2.0);
  EXPECT_EQ(again.data<float>(), first);
  EXPECT_EQ(again.data<float>()[shape[0] - 1], 2.0f);
}

}  // namespace
}  // namespace cu3d
