// The world communicator of a process, from how it was launched: the one file of engine/dist that
// reaches MPI and NCCL. It is a library of its own (cu3d_dist, CMakeLists.txt), so a binary that
// never asks for world() (the GPU suite, which trains in one process) needs neither at run time.
#include "engine/dist/communicator.h"
#include "engine/dist/launch.h"
#include "engine/dist/mpi_communicator.h"
#include "engine/dist/nccl_communicator.h"
#include "kernels/error.h"

namespace cu3d::dist {

Communicator& world() {
  static const std::unique_ptr<Communicator> instance = [] {
    const LaunchInfo launch = detect_launch();
    if (!launch.launched()) return make_local_communicator();
#if CU3D_MPI
    return make_mpi_communicator(launch);
#else
    CU3D_CHECK(launch.world_size == 1,
               "this process is rank {} of {} ({}), but this cu3d was built without MPI; install "
               "libopenmpi-dev and rebuild (cmake -DCU3D_MPI=ON), or run a single process",
               launch.rank, launch.world_size, launch.launcher);
    return make_local_communicator();
#endif
  }();
  return *instance;
}

Communicator& world_for(Device device) {
  Communicator& bootstrap = world();
#if CU3D_NCCL
  if (device.is_cuda() && detect_launch().launched()) {
    static const std::unique_ptr<Communicator> nccl =
        make_nccl_communicator(bootstrap, device.index);
    return *nccl;
  }
#else
  (void)device;
#endif
  return bootstrap;
}

}  // namespace cu3d::dist
