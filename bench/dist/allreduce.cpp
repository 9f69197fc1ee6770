// All-reduce of C3D's gradient volume (78.4 M fp32 values = 314 MB; bf16: 157 MB) through the
// Communicator the trainer uses, timed on every rank. Run under the launcher:
//   mpirun -np 2 --oversubscribe build-cc/cu3d_bench_allreduce [elements] [repeats] [cpu|cuda]
// With `cuda` the buffers are on each rank's GPU (its local rank) and go through NCCL where cu3d
// was built with it (one rank is enough to exercise NCCL on a single-GPU machine).
// Prints, from rank 0, the time per all-reduce and the bandwidths NCCL's tests report: algbw =
// bytes / time, busbw = algbw x 2 (p - 1) / p (what each link carries in a ring), comparable
// across world sizes. docs/SCALING.md records the figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/dtype.h"
#include "engine/tensor.h"

namespace {

using cu3d::dist::WireType;
using Clock = std::chrono::steady_clock;

double time_all_reduce(cu3d::dist::Communicator& comm, void* data, std::size_t count,
                       WireType type) {
  comm.barrier();
  const auto start = Clock::now();
  comm.all_reduce_sum_async(data, count, type)->wait();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // The slowest rank decides when the step can go on.
  double slowest[1] = {seconds};
  std::vector<double> all(std::size_t(comm.size()), 0.0);
  all[std::size_t(comm.rank())] = seconds;
  comm.all_reduce_sum(all.data(), all.size());
  slowest[0] = *std::max_element(all.begin(), all.end());
  return slowest[0];
}

void run(cu3d::dist::Communicator& comm, std::size_t count, int repeats, WireType type,
         cu3d::Device device) {
  const std::size_t element = type == WireType::f32 ? 4 : 2;
  const cu3d::Tensor buffer = cu3d::Tensor::full(
      {int64_t(count)}, 1e-3, type == WireType::f32 ? cu3d::DType::f32 : cu3d::DType::bf16, device);
  void* data = buffer.raw_data();
  std::vector<double> times;
  for (int r = 0; r < repeats + 1; ++r)  // the first one warms up the transport
    times.push_back(time_all_reduce(comm, data, count, type));
  times.erase(times.begin());
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double bytes = double(count * element);
  const double p = comm.size();
  if (comm.rank() == 0)
    std::printf(
        "%s  %zu elements (%.1f MB)  %d ranks  median %.1f ms (min %.1f)  algbw %.2f GB/s  "
        "busbw %.2f GB/s\n",
        type == WireType::f32 ? "fp32" : "bf16", count, bytes / 1e6, comm.size(), median * 1e3,
        times.front() * 1e3, bytes / median / 1e9, bytes / median / 1e9 * 2 * (p - 1) / p);
}

}  // namespace

int main(int argc, char** argv) {
  // C3D (conv1a..fc8, 101 classes): 78.4 M parameters, as layers/models counts them.
  const std::size_t count = argc > 1 ? std::stoull(argv[1]) : 78'400'000;
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  const bool cuda = argc > 3 && std::string(argv[3]) == "cuda";
  const cu3d::Device device =
      cuda ? cu3d::Device::cuda(cu3d::dist::world().local_rank()) : cu3d::Device::cpu();
  cu3d::dist::Communicator& comm = cu3d::dist::world_for(device);
  if (comm.rank() == 0)
    std::printf("all-reduce over %s, buffers on %s\n", comm.describe().c_str(),
                device.str().c_str());
  run(comm, count, repeats, WireType::f32, device);
  run(comm, count, repeats, WireType::bf16, device);
  return 0;
}
