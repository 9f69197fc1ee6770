// How this process was started: alone, or as one rank of a data-parallel job launched by
// OpenMPI's mpirun, Slurm's srun (PMI/PMIx) or a launcher that sets RANK/WORLD_SIZE/LOCAL_RANK
// (torchrun's convention). Read from the environment only, before MPI is initialized, so that a
// single process never touches MPI.
#pragma once

#include <functional>
#include <string>

namespace cu3d::dist {

struct LaunchInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;             // rank among the processes of this host: picks the GPU
  std::string launcher = "none";  // none, mpirun, srun or env
  bool launched() const { return launcher != "none"; }
};

// `getenv` is std::getenv unless a test passes its own environment. Throws cu3d::Error when the
// variables are present but inconsistent (rank outside the world, a non-number).
using GetEnv = std::function<const char*(const char*)>;
LaunchInfo detect_launch(const GetEnv& getenv);
LaunchInfo detect_launch();

}  // namespace cu3d::dist
