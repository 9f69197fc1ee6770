#include "kernels/cpu/blas_core.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include <cblas.h>

namespace cu3d::cpu {
namespace {

// How wide the instructions of each kernel set are: 0 SSE, 1 AVX, 2 AVX2 + FMA, 3 AVX-512.
// Names as OPENBLAS_CORETYPE takes them (case-insensitive); -1 for a name not listed here.
int width_of(const std::string& core) {
  std::string name = core;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });
  for (const char* n : {"skylakex", "cooperlake", "sapphirerapids"})
    if (name == n) return 3;
  for (const char* n : {"haswell", "zen"})
    if (name == n) return 2;
  for (const char* n : {"sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"})
    if (name == n) return 1;
  for (const char* n : {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "nano",
                        "barcelona", "opteron", "opteron_sse3", "bobcat", "katmai", "coppermine",
                        "northwood", "banias", "athlon"})
    if (name == n) return 0;
  return -1;
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.avx = __builtin_cpu_supports("avx");
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
  f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
  return f;
}

std::string blas_core() {
  const char* name = openblas_get_corename();
  return name ? name : "";
}

std::string better_blas_core(const std::string& chosen, const CpuFeatures& cpu) {
  const int width = width_of(chosen);
  if (width < 0) return "";
  // Cooperlake's kernels are SkylakeX's plus the bf16 ones; 0.3.21 runs Sapphire Rapids on them.
  if (cpu.avx512 && width < 3) return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
  if (cpu.avx2_fma && width < 2) return "Haswell";
  if (cpu.avx && width < 1) return "Sandybridge";
  return "";
}

void restart_with_better_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or this restart's
  const std::string core = better_blas_core(blas_core(), cpu_features());
  if (core.empty()) return;
  if (setenv("OPENBLAS_CORETYPE", core.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
}

}  // namespace cu3d::cpu
