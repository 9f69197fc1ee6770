// The NCCL communicator: gradient all-reduce of CUDA buffers on its own stream, so that it
// overlaps the backward kernels on the compute stream. Bootstrapped through the MPI communicator
// (rank 0's ncclUniqueId broadcast), which also carries the host-side totals. Non-blocking NCCL
// (config.blocking = 0) with ncclCommGetAsyncError polled against the timeout: a dead or hung
// rank aborts the communicator and the job instead of a kernel that waits forever.
// Built with CUDA + NCCL + MPI only (CU3D_NCCL).
#pragma once

#if CU3D_NCCL
#include <memory>

#include "engine/dist/communicator.h"

namespace cu3d::dist {

// One rank per GPU: `device` is this rank's GPU (its local rank unless the user pinned another).
// `bootstrap` (MPI) must outlive the result.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device);

}  // namespace cu3d::dist
#endif
