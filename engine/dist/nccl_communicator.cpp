#include "engine/dist/nccl_communicator.h"

#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/core.h>

#include "engine/compute.h"
#include "kernels/cuda/runtime.h"

namespace cu3d::dist {
namespace {

using Clock = std::chrono::steady_clock;

class NcclCommunicator;

class NcclRequest : public Request {
 public:
  NcclRequest(NcclCommunicator& comm, cudaEvent_t done) : comm_(comm), done_(done) {}
  ~NcclRequest() override;
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& comm_;
  cudaEvent_t done_;
  bool finished_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int device) : bootstrap_(bootstrap), device_(device) {
    timeout_ = bootstrap.timeout();
    CU3D_CUDA_CHECK(cudaSetDevice(device));
    ncclUniqueId id;
    if (bootstrap.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap.broadcast(&id, sizeof id, Device::cpu(), 0);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // calls return at once; completion is polled, with the timeout
    check(ncclCommInitRankConfig(&comm_, bootstrap.size(), id, bootstrap.rank(), &config),
          "ncclCommInitRankConfig");
    wait_ready("setting up the NCCL communicator");
    // Its own stream: the all-reduce of a bucket runs while backward goes on.
    CU3D_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }

  ~NcclCommunicator() override {
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  int local_rank() const override { return bootstrap_.local_rank(); }
  std::string describe() const override {
    return fmt::format("NCCL {}.{} on cuda:{} (bootstrap {})", NCCL_MAJOR, NCCL_MINOR, device_,
                       bootstrap_.describe());
  }
  bool accepts(Device device) const override { return device.is_cuda(); }
  void set_timeout(double seconds) override {
    Communicator::set_timeout(seconds);
    bootstrap_.set_timeout(seconds);
  }

  std::unique_ptr<Request> all_reduce_sum_async(void* data, std::size_t count,
                                                WireType type) override {
    // The bucket was packed by work on the compute stream: start after it.
    cudaEvent_t packed = new_event();
    CU3D_CUDA_CHECK(cudaEventRecord(packed, compute_stream()));
    CU3D_CUDA_CHECK(cudaStreamWaitEvent(stream_, packed));
    CU3D_CUDA_CHECK(cudaEventDestroy(packed));
    check(ncclAllReduce(data, data, count, type == WireType::bf16 ? ncclBfloat16 : ncclFloat32,
                        ncclSum, comm_, stream_),
          "ncclAllReduce");
    cudaEvent_t done = new_event();
    CU3D_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<NcclRequest>(*this, done);
  }

  // Host totals go through MPI: no device round trip for a few doubles.
  void all_reduce_sum(double* data, std::size_t count) override {
    bootstrap_.all_reduce_sum(data, count);
  }

  void broadcast(void* data, std::size_t bytes, Device device, int root) override {
    if (!device.is_cuda()) return bootstrap_.broadcast(data, bytes, device, root);
    CU3D_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
    check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    cudaEvent_t done = new_event();
    CU3D_CUDA_CHECK(cudaEventRecord(done, stream_));
    NcclRequest(*this, done).wait();
  }

  void barrier() override { bootstrap_.barrier(); }

  [[noreturn]] void abort(const std::string& why) override {
    ncclCommAbort(comm_);
    bootstrap_.abort(why);
    std::_Exit(1);  // not reached: the compiler cannot see through the virtual [[noreturn]]
  }

  // Polls the communicator's asynchronous error state: a peer's failure shows up here.
  void check_async(const char* what) {
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess && state != ncclInProgress)
      abort(fmt::format("NCCL {} failed: {} (another rank probably died)", what,
                        ncclGetErrorString(state)));
  }

  Clock::time_point deadline() const {
    return Clock::now() +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_));
  }

  [[noreturn]] void timed_out(const std::string& what) {
    abort(fmt::format(
        "no answer from the other ranks for {} s during the {} (a rank died or hangs); stopping "
        "the job (--dist-timeout). The last checkpoint written stays valid",
        timeout_, what));
  }

 private:
  void check(ncclResult_t result, const char* call) {
    if (result != ncclSuccess && result != ncclInProgress)
      abort(fmt::format("{} failed: {}", call, ncclGetErrorString(result)));
  }

  void wait_ready(const std::string& what) {
    const auto end = deadline();
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) {
      ncclCommGetAsyncError(comm_, &state);
      if (Clock::now() > end) timed_out(what);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    check(state, "ncclCommInitRankConfig");
  }

  static cudaEvent_t new_event() {
    cudaEvent_t event;
    CU3D_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    return event;
  }

  Communicator& bootstrap_;
  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

NcclRequest::~NcclRequest() {
  if (!finished_) wait();
  cudaEventDestroy(done_);
}

bool NcclRequest::test() {
  if (finished_) return true;
  comm_.check_async("all-reduce");
  const cudaError_t state = cudaEventQuery(done_);
  if (state == cudaErrorNotReady) return false;
  CU3D_CUDA_CHECK(state);
  finished_ = true;
  return true;
}

void NcclRequest::wait() {
  const auto end = comm_.deadline();
  while (!test()) {
    if (Clock::now() > end) comm_.timed_out("all-reduce of gradients");
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device) {
  return std::make_unique<NcclCommunicator>(bootstrap, device);
}

}  // namespace cu3d::dist
