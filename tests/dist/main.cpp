// cu3d_dist_tests runs under `mpirun -np 2` (CTest: dist.two_ranks): every rank runs every test,
// and the tests use the job's communicator, dist::world(). MPI is finalized when world() is
// destroyed at exit. A failing rank's gtest output names its rank.
#include <gtest/gtest.h>

#include "engine/dist/communicator.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  cu3d::dist::Communicator& world = cu3d::dist::world();
  // Only rank 0 prints the test listing; the others report failures only.
  if (world.rank() != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int status = RUN_ALL_TESTS();
  // A failure on any rank fails the job, whichever rank mpirun reports.
  double failed = status != 0;
  world.all_reduce_sum(&failed, 1);
  return failed > 0 ? 1 : 0;
}
