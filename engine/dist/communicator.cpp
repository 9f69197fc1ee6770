#include "engine/dist/communicator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>

#include "engine/dist/mpi_communicator.h"
#include "engine/dist/nccl_communicator.h"
#include "engine/dtype.h"
#include "kernels/error.h"

namespace cu3d::dist {
namespace {

class DoneRequest : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string describe() const override { return "single process"; }
  bool accepts(Device) const override { return true; }
  std::unique_ptr<Request> all_reduce_sum_async(void*, std::size_t, WireType) override {
    return std::make_unique<DoneRequest>();
  }
  void all_reduce_sum(double*, std::size_t) override {}
  void broadcast(void*, std::size_t, Device, int root) override {
    CU3D_CHECK(root == 0, "broadcast from rank {} in a world of one", root);
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why) override {
    std::fprintf(stderr, "cu3d: %s\n", why.c_str());
    std::exit(1);
  }
};

}  // namespace

void Communicator::set_timeout(double seconds) {
  CU3D_CHECK(std::isfinite(seconds) && seconds > 0,
             "--dist-timeout {} must be a positive number of seconds", seconds);
  timeout_ = seconds;
}

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

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

void add_bf16(const void* in, void* inout, std::size_t count) {
  const auto* a = static_cast<const bf16*>(in);
  auto* b = static_cast<bf16*>(inout);
  for (std::size_t i = 0; i < count; ++i)
    b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

}  // namespace cu3d::dist
