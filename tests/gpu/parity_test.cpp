// The GPU suite: one parametrized test per parity case (tests/gpu/parity.h). Without a usable
// GPU every case is skipped with the reason, so CTest reports it skipped, not passed.
//
// Inputs are fresh for every case: the generator is seeded from the case name and a run seed
// (CU3D_TEST_SEED, default a fixed value; printed on failure so a failing draw reproduces).
#include <cstdlib>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "gpu/parity.h"

namespace cu3d::parity {
namespace {

std::vector<ParityCase> all_cases() {
  std::vector<ParityCase> all;
  for (auto family : {conv3d_cases, op_cases, dense_cases, fused_cases}) {
    auto more = family();
    all.insert(all.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  }
  return all;
}

uint64_t run_seed() {
  const char* env = std::getenv("CU3D_TEST_SEED");
  return env ? std::strtoull(env, nullptr, 10) : 20261125;
}

class Parity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(Parity, MatchesCpuReference) {
  std::string reason;
  if (!cuda::device_available(&reason)) GTEST_SKIP() << reason;
  const ParityCase& c = GetParam();
  if (c.available && !c.available(&reason)) GTEST_SKIP() << reason;
  const uint64_t seed = run_seed() ^ std::hash<std::string>{}(c.name);
  std::mt19937_64 rng(seed);
  const cuda::Stream stream;
  for (const Compared& r : c.run(rng, stream.get())) {
    // NaN fails too: EXPECT_LE(NaN, tol) is false.
    EXPECT_LE(r.rel_error, c.tolerance)
        << c.name << " output " << r.output << ": ||out - ref|| / ||ref|| = " << r.rel_error
        << " (NaN: an element unwritten or not finite); run seed " << run_seed();
    ::testing::Test::RecordProperty(r.output + "_rel_error", std::to_string(r.rel_error));
    std::printf("[ PARITY   ] %-44s %-6s rel %.3e (tol %.0e)\n", c.name.c_str(), r.output.c_str(),
                r.rel_error, c.tolerance);
  }
}

std::string test_name(const ::testing::TestParamInfo<ParityCase>& info) {
  std::string name = info.param.name;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Gpu, Parity, ::testing::ValuesIn(all_cases()), test_name);

}  // namespace
}  // namespace cu3d::parity
