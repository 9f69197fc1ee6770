// The MPI communicator (OpenMPI's mpirun, Slurm's srun through PMIx): CPU collectives, and the
// bootstrap NCCL needs. Built only with MPI (CU3D_MPI); world() is the way in.
#pragma once

#if CU3D_MPI
#include <memory>

#include "engine/dist/communicator.h"

namespace cu3d::dist {

// Initializes MPI (once per process; finalized when the communicator is destroyed) and checks
// that MPI's world agrees with what the launcher's variables said.
std::unique_ptr<Communicator> make_mpi_communicator(const LaunchInfo& launch);

}  // namespace cu3d::dist
#endif
