#include "engine/host_cache.h"

#include <atomic>
#include <cstdlib>
#include <list>
#include <mutex>
#include <unordered_map>

#include "kernels/error.h"

namespace cu3d {
namespace {

constexpr std::size_t kHostAlignment = 64;

std::size_t rounded(std::size_t bytes) {
  const std::size_t r = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  return r == 0 ? kHostAlignment : r;
}

void* system_alloc(std::size_t bytes) {
  void* ptr = std::aligned_alloc(kHostAlignment, rounded(bytes));
  CU3D_CHECK(ptr, "host out of memory: could not allocate {:.1f} MiB; try a smaller --batch",
             bytes / 1048576.0);
  return ptr;
}

std::size_t limit_from_env() {
  const char* env = std::getenv("CU3D_HOST_CACHE_MB");
  if (!env || !*env) return std::size_t(2048) << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(env, &end, 10);
  CU3D_CHECK(end && *end == '\0' && mb >= 0,
             "CU3D_HOST_CACHE_MB='{}' is not a size in MiB; set a whole number >= 0 (0: no cache)",
             env);
  return std::size_t(mb) << 20;
}

// Free blocks by size; `order` lists them oldest first so that trimming frees the least recently
// returned ones.
struct Cache {
  std::mutex mutex;
  std::unordered_multimap<std::size_t, void*> by_size;
  std::list<std::pair<std::size_t, void*>> order;
  std::size_t cached = 0;

  void* take(std::size_t size) {
    const std::lock_guard lock(mutex);
    const auto it = by_size.find(size);
    if (it == by_size.end()) return nullptr;
    void* ptr = it->second;
    by_size.erase(it);
    order.remove({size, ptr});
    cached -= size;
    return ptr;
  }

  void put(std::size_t size, void* ptr, std::size_t limit) {
    const std::lock_guard lock(mutex);
    by_size.emplace(size, ptr);
    order.emplace_back(size, ptr);
    cached += size;
    while (cached > limit)
      drop_oldest();
  }

  void drop_oldest() {
    const auto [size, ptr] = order.front();
    order.pop_front();
    for (auto [it, end] = by_size.equal_range(size); it != end; ++it)
      if (it->second == ptr) {
        by_size.erase(it);
        break;
      }
    cached -= size;
    std::free(ptr);
  }
};

Cache& cache() {
  static Cache* c = new Cache;  // leaked on purpose: tensors may be freed during static teardown
  return *c;
}

// Bytes handed out and their high-water mark; atomics, since the loader threads allocate too.
struct Usage {
  std::atomic<std::size_t> used{0};
  std::atomic<std::size_t> peak{0};

  void add(std::size_t size) {
    const std::size_t now = used.fetch_add(size) + size;
    std::size_t high = peak.load();
    while (now > high && !peak.compare_exchange_weak(high, now)) {
    }
  }
};

Usage& usage() {
  static Usage u;  // trivially destructible: safe for tensors freed during static teardown
  return u;
}

void* take_or_allocate(std::size_t size) {
  // Reading the limit here surfaces a bad CU3D_HOST_CACHE_MB as an error, not in a destructor.
  if (size >= kHostCacheMinBytes && host_cache_limit() > 0)
    if (void* ptr = cache().take(size)) return ptr;
  return system_alloc(size);
}

}  // namespace

std::size_t host_cache_limit() {
  static const std::size_t limit = limit_from_env();
  return limit;
}

void* host_cache_alloc(std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  void* ptr = take_or_allocate(size);
  usage().add(size);
  return ptr;
}

void host_cache_free(void* ptr, std::size_t bytes) {
  if (!ptr) return;
  const std::size_t size = rounded(bytes);
  usage().used -= size;
  if (size < kHostCacheMinBytes || size > host_cache_limit()) {
    std::free(ptr);
    return;
  }
  cache().put(size, ptr, host_cache_limit());
}

std::size_t host_cache_cached_bytes() {
  const std::lock_guard lock(cache().mutex);
  return cache().cached;
}

void host_cache_release() {
  Cache& c = cache();
  const std::lock_guard lock(c.mutex);
  while (!c.order.empty())
    c.drop_oldest();
}

std::size_t host_cache_used_bytes() {
  return usage().used;
}

std::size_t host_cache_peak_used_bytes() {
  return usage().peak;
}

void host_cache_reset_peak() {
  usage().peak = usage().used.load();
}

}  // namespace cu3d
