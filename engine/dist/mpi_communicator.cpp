#include "engine/dist/mpi_communicator.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "engine/storage.h"
#include "kernels/error.h"

namespace cu3d::dist {
namespace {

using Clock = std::chrono::steady_clock;

extern "C" void sum_bf16(void* in, void* inout, int* count, MPI_Datatype*) {
  add_bf16(in, inout, std::size_t(*count));
}

class MpiCommunicator;

class MpiRequest : public Request {
 public:
  MpiRequest(MpiCommunicator& comm, MPI_Request request, std::string what)
      : comm_(comm), request_(request), what_(std::move(what)) {}
  ~MpiRequest() override;
  bool test() override;
  void wait() override;

 private:
  MpiCommunicator& comm_;
  MPI_Request request_;
  std::string what_;
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchInfo& launch) : launcher_(launch.launcher) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // Only the main thread calls MPI (the loader's threads never do).
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      owns_mpi_ = true;
    }
    // Errors come back as codes, so that a dead peer gives our message, not MPI's default abort.
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
    MPI_Op_create(sum_bf16, 1, &sum_bf16_);
    if (size_ != launch.world_size || rank_ != launch.rank)
      abort(
          fmt::format("MPI says rank {} of {}, the launcher's variables ({}) rank {} of {}; "
                      "launch with mpirun or srun --mpi=pmix and unset stale RANK/WORLD_SIZE",
                      rank_, size_, launch.launcher, launch.rank, launch.world_size));
  }

  ~MpiCommunicator() override {
    MPI_Op_free(&sum_bf16_);
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string describe() const override {
    return fmt::format("MPI ({}), {} ranks", launcher_, size_);
  }
  bool accepts(Device device) const override { return !device.is_cuda(); }

  std::unique_ptr<Request> all_reduce_sum_async(void* data, std::size_t count,
                                                WireType type) override {
    MPI_Request request;
    const bool bf16 = type == WireType::bf16;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, checked_int(count), bf16 ? MPI_UINT16_T : MPI_FLOAT,
                         bf16 ? sum_bf16_ : MPI_SUM, comm_, &request),
          "all-reduce");
    return std::make_unique<MpiRequest>(*this, request, "all-reduce of gradients");
  }

  void all_reduce_sum(double* data, std::size_t count) override {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, checked_int(count), MPI_DOUBLE, MPI_SUM, comm_,
                         &request),
          "all-reduce");
    MpiRequest(*this, request, "all-reduce of totals").wait();
  }

  void broadcast(void* data, std::size_t bytes, Device device, int root) override {
    std::vector<char> staging;
    void* buffer = data;
    if (device.is_cuda()) {
      staging.resize(bytes);
      buffer = staging.data();
      if (rank_ == root) copy_bytes(buffer, Device::cpu(), data, device, bytes);
    }
    MPI_Request request;
    check(MPI_Ibcast(buffer, checked_int(bytes), MPI_BYTE, root, comm_, &request), "broadcast");
    MpiRequest(*this, request, "broadcast from rank " + std::to_string(root)).wait();
    if (device.is_cuda() && rank_ != root) copy_bytes(data, device, buffer, Device::cpu(), bytes);
  }

  void barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(comm_, &request), "barrier");
    MpiRequest(*this, request, "barrier").wait();
  }

  [[noreturn]] void abort(const std::string& why) override {
    std::fflush(stdout);
    std::fprintf(stderr, "cu3d: rank %d of %d: %s\n", rank_, size_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);  // MPI_Abort does not return; this is for a broken MPI that does
  }

  void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    abort(fmt::format("MPI {} failed: {} (another rank probably died)", what,
                      std::string(text, std::size_t(length))));
  }

 private:
  int checked_int(std::size_t count) {
    if (count > std::size_t(INT_MAX))
      abort(fmt::format("a collective of {} elements exceeds MPI's int count", count));
    return int(count);
  }

  std::string launcher_;
  bool owns_mpi_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Op sum_bf16_ = MPI_OP_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

MpiRequest::~MpiRequest() {
  // A request dropped unfinished (an exception unwinding the step) is still owned by MPI: wait
  // for it, within the timeout, so that its buffer outlives it.
  if (!done_) wait();
}

bool MpiRequest::test() {
  if (done_) return true;
  int flag = 0;
  comm_.check(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE), what_.c_str());
  done_ = flag != 0;
  return done_;
}

void MpiRequest::wait() {
  const auto deadline = Clock::now() + std::chrono::duration<double>(comm_.timeout());
  // OpenMPI progresses non-blocking collectives inside MPI calls only, so the wait polls; the
  // sleep grows to 1 ms, small next to a step, and leaves the core to the loader's threads.
  auto pause = std::chrono::microseconds(10);
  while (!test()) {
    if (Clock::now() > deadline)
      comm_.abort(fmt::format(
          "no answer from the other ranks for {} s during the {} (a rank died or hangs); "
          "stopping the job (--dist-timeout). The last checkpoint written stays valid",
          comm_.timeout(), what_));
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchInfo& launch) {
  return std::make_unique<MpiCommunicator>(launch);
}

}  // namespace cu3d::dist
