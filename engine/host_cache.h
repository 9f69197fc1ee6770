// A cache of large host blocks for CPU tensors. glibc serves every allocation above its mmap
// threshold (at most 32 MiB) with a fresh mmap, so each training step's big activations and
// gradients (keras3d's conv1 outputs are 42 MB at batch 32) were page-faulted and zeroed by the
// kernel again on every step: ~10 % of a keras3d CPU step (perf, docs/BENCHMARKS.md). Freed
// blocks of at least kHostCacheMinBytes are kept, keyed by their exact rounded size, and handed
// back to the next request of that size; the cache holds at most host_cache_limit() bytes and
// releases the oldest blocks beyond it. Thread-safe (the loader threads allocate too).
#pragma once

#include <cstddef>

namespace cu3d {

// Blocks below this come from aligned_alloc directly: glibc reuses them without page faults.
inline constexpr std::size_t kHostCacheMinBytes = std::size_t(1) << 20;

// 64-byte aligned host memory of at least `bytes`; an error naming the size when the host is out
// of memory.
void* host_cache_alloc(std::size_t bytes);
// Returns a block from host_cache_alloc(bytes) (the same `bytes`).
void host_cache_free(void* ptr, std::size_t bytes);

// Bytes currently kept for reuse, and the limit (CU3D_HOST_CACHE_MB, default 2048 MiB; 0 turns
// the cache off).
std::size_t host_cache_cached_bytes();
std::size_t host_cache_limit();
// Frees every cached block.
void host_cache_release();

// Bytes of the blocks handed out and not yet freed (what CPU tensors hold now, small blocks
// included, the cache's kept blocks not), and the most at once since host_cache_reset_peak():
// the host memory a CPU training step needs, which ModelSummary::training_bytes estimates.
std::size_t host_cache_used_bytes();
std::size_t host_cache_peak_used_bytes();
void host_cache_reset_peak();  // the peak becomes the current use

}  // namespace cu3d
