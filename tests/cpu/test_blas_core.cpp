// The OpenBLAS kernel choice (kernels/cpu/blas_core.h): which kernel set is asked for on which
// CPU, and that the cu3d binary restarts itself with it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "kernels/cpu/blas_core.h"
#include "tests/cpu/child_process.h"

namespace cu3d::cpu {
namespace {

constexpr CpuFeatures kSse{};
constexpr CpuFeatures kAvx2{.avx = true, .avx2_fma = true};
constexpr CpuFeatures kAvx512{.avx = true, .avx2_fma = true, .avx512 = true};
constexpr CpuFeatures kAvx512Bf16{
    .avx = true, .avx2_fma = true, .avx512 = true, .avx512_bf16 = true};

TEST(BlasCore, AFallbackToSse3KernelsAsksForTheWidestTheCpuRuns) {
  EXPECT_EQ(better_blas_core("Prescott", kAvx512Bf16), "Cooperlake");  // Emerald Rapids
  EXPECT_EQ(better_blas_core("Prescott", kAvx512), "SkylakeX");
  EXPECT_EQ(better_blas_core("prescott", kAvx2), "Haswell");
  EXPECT_EQ(better_blas_core("Nehalem", CpuFeatures{.avx = true}), "Sandybridge");
  EXPECT_EQ(better_blas_core("Haswell", kAvx512), "SkylakeX");
}

TEST(BlasCore, AChoiceAsWideAsTheCpuOrUnknownIsKept) {
  EXPECT_EQ(better_blas_core("SkylakeX", kAvx512Bf16), "");  // OpenBLAS chose it knowingly
  EXPECT_EQ(better_blas_core("Cooperlake", kAvx512Bf16), "");
  EXPECT_EQ(better_blas_core("Zen", kAvx2), "");
  EXPECT_EQ(better_blas_core("Haswell", kAvx2), "");
  EXPECT_EQ(better_blas_core("Prescott", kSse), "");
  EXPECT_EQ(better_blas_core("NeoverseN1", kAvx512), "");
  EXPECT_EQ(better_blas_core("", kAvx512), "");
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });
  return text;
}

// `cu3d --version` names the kernels its OpenBLAS runs: the better set where this CPU has one
// (so the binary restarted itself with OPENBLAS_CORETYPE), else the set the library chose.
TEST(BlasCore, TheBinaryRunsTheBetterKernels) {
  if (std::getenv("OPENBLAS_CORETYPE"))
    GTEST_SKIP() << "OPENBLAS_CORETYPE is set here: cu3d keeps a user's setting";
  const std::filesystem::path binary = testing::cu3d_binary();
  if (binary.empty()) GTEST_SKIP() << "no cu3d binary beside the test binary";
  const std::filesystem::path log =
      std::filesystem::temp_directory_path() / ("cu3d_blas_core_" + std::to_string(getpid()));
  std::filesystem::remove(log);
  const int status = testing::wait_for(testing::spawn(binary, {"--version"}, {}, log));
  const std::string out = lower(testing::read_text(log));
  std::filesystem::remove(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  const std::string better = better_blas_core(blas_core(), cpu_features());
  const std::string expected = better.empty()
                                   ? "openblas " + lower(blas_core()) + " kernels\n"
                                   : "openblas " + lower(better) + " kernels (openblas_coretype)\n";
  EXPECT_NE(out.find(expected), std::string::npos) << "expected '" << expected << "' in:\n" << out;
}

}  // namespace
}  // namespace cu3d::cpu
