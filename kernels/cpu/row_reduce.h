// Deterministic, OpenMP-parallel sums over the rows of a channels-last (rows, c) array, shared
// by the normalization kernels. Rows are split into chunks whose boundaries depend only on the
// shape, never on the thread count, and the chunk partials are added in chunk order: the result
// is bit-identical for any OMP_NUM_THREADS, which keeps CPU runs reproducible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace cu3d::cpu {

// Below this many elements an OpenMP fork/join (a few microseconds) costs more than the loop.
inline constexpr int64_t kParallelMinElements = int64_t(1) << 15;

// Elements per reduction chunk: 16 Ki doubles of partial work keeps each chunk well above the
// scheduling overhead while leaving a large group enough chunks to feed every thread.
inline constexpr int64_t kReduceChunkElements = int64_t(1) << 14;

// For each of `groups` consecutive blocks of `m` rows of width `c`, sums K quantities:
// out[g * K + k] = sum over rows r of group g of what `row_sums(r, acc)` adds to acc[k].
// A single huge group (one whole sample) is still split across threads.
template <int K, typename RowSums>
void sum_per_group(int64_t groups, int64_t m, int c, RowSums row_sums, double* out) {
  const int64_t rows_per_chunk = std::max<int64_t>(1, kReduceChunkElements / c);
  const int64_t chunks = (m + rows_per_chunk - 1) / rows_per_chunk;
  const int64_t tasks = groups * chunks;
  std::vector<double> partial(tasks * K, 0.0);
#pragma omp parallel for schedule(static) if (groups * m * c >= kParallelMinElements)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t g = t / chunks;
    const int64_t begin = (t % chunks) * rows_per_chunk;
    const int64_t end = std::min(m, begin + rows_per_chunk);
    for (int64_t r = begin; r < end; ++r)
      row_sums(g * m + r, &partial[t * K]);
  }
  for (int64_t g = 0; g < groups; ++g) {
    for (int k = 0; k < K; ++k) {
      double s = 0.0;
      for (int64_t ch = 0; ch < chunks; ++ch)
        s += partial[(g * chunks + ch) * K + k];
      out[g * K + k] = s;
    }
  }
}

// Per-channel sums over all rows: out[k * c + j] = sum over rows r of what `row_sums(r, acc)`
// adds to acc[k * c + j].
template <int K, typename RowSums>
void sum_per_channel(int64_t rows, int c, RowSums row_sums, double* out) {
  const int64_t rows_per_chunk = std::max<int64_t>(1, kReduceChunkElements / c);
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  const int64_t width = int64_t(K) * c;
  std::vector<double> partial(chunks * width, 0.0);
#pragma omp parallel for schedule(static) if (rows * c >= kParallelMinElements)
  for (int64_t t = 0; t < chunks; ++t) {
    const int64_t end = std::min(rows, (t + 1) * rows_per_chunk);
    for (int64_t r = t * rows_per_chunk; r < end; ++r)
      row_sums(r, &partial[t * width]);
  }
  std::fill(out, out + width, 0.0);
  for (int64_t t = 0; t < chunks; ++t) {
    for (int64_t j = 0; j < width; ++j)
      out[j] += partial[t * width + j];
  }
}

}  // namespace cu3d::cpu
