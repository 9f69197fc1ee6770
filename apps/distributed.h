// Data-parallel training for `cu3d train` (docs/SCALING.md): what the trainer does differently
// when it is one rank of a job launched by mpirun or srun. The trainer keeps one code path; with
// a world of one every function here is the identity (or nearly).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/dist/communicator.h"
#include "engine/dist/grad_reducer.h"
#include "engine/optim/optimizer.h"
#include "layers/module.h"

namespace cu3d::apps {

struct DistSettings {
  double bucket_mb = 25;            // gradient bucket size of the overlapped all-reduce
  bool bf16_grads = false;          // reduce gradients in bf16 (half the traffic)
  std::string lr_scaling = "none";  // none, or linear: --lr times the world size
  double timeout = 300;             // seconds a collective may wait for the other ranks
  bool sync_bn = false;             // batch-norm statistics over all ranks (else per rank)
};

// The learning rate the optimizer uses: `lr`, or for linear scaling `lr` x world size (Goyal et
// al. 2017: the global batch grew by that factor; pair it with --warmup).
double scaled_lr(double lr, const DistSettings& settings, int world_size);

// Rank 0's parameters, buffers (batch-norm statistics) and optimizer state to every rank, so that
// all replicas start (or resume) identical.
void broadcast_state(dist::Communicator& comm, Module& model, const Optimizer* optimizer);

// With several ranks, makes every BatchNorm of `model` take its training statistics over all
// ranks; returns how many there are.
int synchronize_batch_norm(Module& model, dist::Communicator& comm);

// Gives every rank but 0 its own dropout masks (the seed of each Dropout mixed with the rank):
// with the same seed, all ranks would drop the same units of their batches. Rank 0 keeps the
// single process's masks; a resumed run draws the same masks again (they depend on seed, rank
// and the restored counter).
void decorrelate_dropout(Module& model, int rank);

// The reducer for `model`'s parameters, or null in a world of one.
std::unique_ptr<dist::GradReducer> make_reducer(dist::Communicator& comm, Module& model,
                                                const DistSettings& settings);

// The run's layout, printed by rank 0 when the world has more than one rank: ranks, global batch,
// learning rate and its scaling, buckets, and the padding of each training epoch.
void print_data_parallel(const dist::Communicator& comm, int batch, double lr,
                         const DistSettings& settings, const dist::GradReducer* reducer,
                         std::size_t train_items);

// A step's totals over all ranks: the loss summed over clips, correct predictions, clips, and
// whether any rank was asked to stop (Ctrl-C), so that all stop after the same step.
struct StepTotals {
  double loss_sum = 0;
  int64_t correct = 0, clips = 0;
  bool stop = false;
};
StepTotals reduce_step(dist::Communicator& comm, double mean_loss, int64_t correct, int64_t clips,
                       bool stop);

// True on every rank when `flag` is true on any (a stop request seen by one rank only).
bool any_rank(dist::Communicator& comm, bool flag);

// Ranks other than 0 write no files and print nothing: while this guard lives, their stdout goes
// to /dev/null (stderr stays, for errors).
class QuietUnlessRankZero {
 public:
  explicit QuietUnlessRankZero(const dist::Communicator& comm);
  ~QuietUnlessRankZero();
  QuietUnlessRankZero(const QuietUnlessRankZero&) = delete;
  QuietUnlessRankZero& operator=(const QuietUnlessRankZero&) = delete;

 private:
  int saved_ = -1;
};

}  // namespace cu3d::apps
