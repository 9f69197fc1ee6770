#include "apps/distributed.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/core.h>

#include "data/rank_share.h"
#include "engine/autograd.h"
#include "kernels/error.h"
#include "layers/basic.h"
#include "layers/norm.h"

namespace cu3d::apps {

double scaled_lr(double lr, const DistSettings& settings, int world_size) {
  if (settings.lr_scaling == "none") return lr;
  CU3D_CHECK(settings.lr_scaling == "linear", "unknown --lr-scaling '{}'; use none or linear",
             settings.lr_scaling);
  return lr * double(world_size);
}

void broadcast_state(dist::Communicator& comm, Module& model, const Optimizer* optimizer) {
  if (comm.size() == 1) return;
  autograd::NoGradGuard no_grad;
  auto send = [&](const NamedTensors& tensors) {
    for (const auto& [name, t] : tensors)
      comm.broadcast(t.raw_data(), t.nbytes(), t.device(), 0);
  };
  send(model.named_parameters());
  send(model.named_buffers());
  if (optimizer != nullptr) send(optimizer->state());
}

int synchronize_batch_norm(Module& model, dist::Communicator& comm) {
  if (comm.size() == 1) return 0;
  int count = 0;
  if (auto* bn = dynamic_cast<BatchNorm*>(&model)) {
    bn->set_sync(&comm);
    ++count;
  }
  for (const auto& [name, child] : model.children())
    count += synchronize_batch_norm(*child, comm);
  return count;
}

void decorrelate_dropout(Module& model, int rank) {
  if (rank == 0) return;
  if (auto* dropout = dynamic_cast<Dropout*>(&model))
    dropout->set_seed(dropout->seed() ^ (0x9e3779b97f4a7c15ull * uint64_t(rank)));
  for (const auto& [name, child] : model.children())
    decorrelate_dropout(*child, rank);
}

std::unique_ptr<dist::GradReducer> make_reducer(dist::Communicator& comm, Module& model,
                                                const DistSettings& settings) {
  if (comm.size() == 1) return nullptr;
  std::vector<Tensor> params;
  for (const auto& [name, p] : model.named_parameters())
    params.push_back(p);
  return std::make_unique<dist::GradReducer>(
      comm, std::move(params),
      dist::ReducerOptions{
          .bucket_mb = settings.bucket_mb,
          .wire = settings.bf16_grads ? dist::WireType::bf16 : dist::WireType::f32});
}

void print_data_parallel(const dist::Communicator& comm, int batch, double lr,
                         const DistSettings& settings, const dist::GradReducer* reducer,
                         std::size_t train_items) {
  if (comm.size() == 1) return;
  fmt::print(
      "train: data parallel over {}: global batch {} = {} per rank x {} ranks; lr {} "
      "(--lr-scaling {}); {} gradient buckets of <= {} MB in {}\n",
      comm.describe(), int64_t(batch) * comm.size(), batch, comm.size(), lr, settings.lr_scaling,
      reducer->bucket_count(), settings.bucket_mb, settings.bf16_grads ? "bf16" : "fp32");
  fmt::print("train: batch-norm statistics {}\n",
             settings.sync_bn ? "over all ranks (--sync-bn)" : "per rank (see --sync-bn)");
  const std::size_t padding = data::train_padding(train_items, comm.size());
  if (padding > 0)
    fmt::print(
        "train: {} training videos do not divide among {} ranks: each epoch repeats its "
        "first {} to give every rank the same number of steps\n",
        train_items, comm.size(), padding);
}

StepTotals reduce_step(dist::Communicator& comm, double mean_loss, int64_t correct, int64_t clips,
                       bool stop) {
  if (comm.size() == 1) return {mean_loss * double(clips), correct, clips, stop};
  // Counts travel as doubles: exact up to 2^53.
  double totals[4] = {mean_loss * double(clips), double(correct), double(clips), double(stop)};
  comm.all_reduce_sum(totals, 4);
  return {totals[0], int64_t(totals[1]), int64_t(totals[2]), totals[3] > 0};
}

bool any_rank(dist::Communicator& comm, bool flag) {
  double value = flag;
  comm.all_reduce_sum(&value, 1);
  return value > 0;
}

QuietUnlessRankZero::QuietUnlessRankZero(const dist::Communicator& comm) {
  if (comm.rank() == 0) return;
  std::fflush(stdout);
  const int null = ::open("/dev/null", O_WRONLY);
  CU3D_CHECK(null >= 0, "rank {}: cannot open /dev/null to silence its output", comm.rank());
  saved_ = ::dup(STDOUT_FILENO);
  ::dup2(null, STDOUT_FILENO);
  ::close(null);
}

QuietUnlessRankZero::~QuietUnlessRankZero() {
  if (saved_ < 0) return;
  std::fflush(stdout);
  ::dup2(saved_, STDOUT_FILENO);
  ::close(saved_);
}

}  // namespace cu3d::apps
