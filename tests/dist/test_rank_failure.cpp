// A rank that dies or hangs must stop the job, not leave the others waiting forever. This test
// is run by tests/dist/expect_rank_failure.sh, which sets CU3D_DIST_FAILURE and checks that the
// job ends non-zero with a message; in the normal 2-rank run it skips.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "engine/dist/communicator.h"

namespace cu3d {
namespace {

TEST(RankFailure, OtherRanksStopWithinTheTimeout) {
  const char* mode = std::getenv("CU3D_DIST_FAILURE");
  if (mode == nullptr)
    GTEST_SKIP() << "run by expect_rank_failure.sh (CU3D_DIST_FAILURE=hang|kill)";
  dist::Communicator& world = dist::world();
  ASSERT_GE(world.size(), 2);
  world.set_timeout(5);
  world.barrier();
  if (world.rank() == 1) {
    if (std::string(mode) == "kill") std::raise(SIGKILL);
    ::sleep(3600);  // hangs: rank 0's collective must time out
  }
  double x = 1;
  world.all_reduce_sum(&x, 1);  // aborts the job: rank 1 never joins
  ADD_FAILURE() << "the all-reduce returned although rank 1 " << mode << "ed";
}

}  // namespace
}  // namespace cu3d
