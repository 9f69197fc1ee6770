// The collectives data-parallel training needs, behind one small interface: MPI for CPU tensors
// (and to bootstrap NCCL), NCCL for CUDA tensors, and a world of one for a process started alone.
// Every operation that waits on other ranks gives up after `timeout` seconds: a rank that died or
// hangs then stops this one with a message (abort), instead of a job that hangs forever.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "engine/device.h"
#include "engine/dist/launch.h"

namespace cu3d::dist {

// What the gradient buckets are summed in: fp32, or bf16 (half the bytes on the wire, 8 bits of
// mantissa; the sum of `world` bf16 values is rounded once per step of the reduction).
enum class WireType { f32, bf16 };

// An all-reduce in flight.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;  // drives progress; true once the result is in the buffer
  virtual void wait() = 0;  // until done; aborts the job past the communicator's timeout
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual std::string describe() const = 0;  // "MPI over mpirun, 2 ranks"
  // Whether buffers given to the collectives live on `device` (MPI: host memory; NCCL: CUDA).
  virtual bool accepts(Device device) const = 0;

  // Sum over all ranks, in place, without waiting: `count` elements of `type` at `data`.
  virtual std::unique_ptr<Request> all_reduce_sum_async(void* data, std::size_t count,
                                                        WireType type) = 0;
  // Blocking sum of doubles in host memory (counts and metric totals).
  virtual void all_reduce_sum(double* data, std::size_t count) = 0;
  // Rank `root`'s bytes (host memory, or device memory where accepts() says so) to every rank.
  virtual void broadcast(void* data, std::size_t bytes, Device device, int root) = 0;
  virtual void barrier() = 0;
  // Prints "rank R: why" on stderr and ends every rank of the job with a non-zero status.
  [[noreturn]] virtual void abort(const std::string& why) = 0;

  double timeout() const { return timeout_; }
  virtual void set_timeout(double seconds);

 protected:
  double timeout_ = 300;
};

// A world of one: every collective is the identity. What a process started without a launcher
// uses, so the trainer has a single code path.
std::unique_ptr<Communicator> make_local_communicator();

// world() and world_for() live in world.cpp, the library cu3d_dist (MPI and NCCL): binaries that
// train in one process (the GPU suite) link the rest of engine/dist without them.
//
// The process's communicator for the job it belongs to (detect_launch()): MPI when launched by
// mpirun/srun/RANK+WORLD_SIZE, else the world of one. Initializes MPI on first use (once per
// process; MPI is finalized at exit). Throws cu3d::Error when launched as several ranks by a cu3d
// built without MPI.
Communicator& world();

// The communicator for gradients on `device`: NCCL for a CUDA device when cu3d was built with
// NCCL and the process was launched as a rank (bootstrapped through world(); one per process),
// else world() (MPI stages CUDA buffers through host memory).
Communicator& world_for(Device device);

// A reduce of `count` bf16 values as MPI and NCCL see them: 2-byte words.
void add_bf16(const void* in, void* inout, std::size_t count);

}  // namespace cu3d::dist
