#include "apps/distributed_flags.h"

namespace cu3d::apps {

void add_data_parallel_flags(CLI::App& cmd, DistSettings& settings) {
  const char* group = "Data parallel (launched by mpirun or srun; docs/SCALING.md)";
  cmd.add_option("--bucket-mb", settings.bucket_mb,
                 "gradient bucket size: each bucket's all-reduce starts as soon as backward has "
                 "finished its gradients")
      ->group(group)
      ->capture_default_str();
  cmd.add_flag("--bf16-grads", settings.bf16_grads,
               "all-reduce gradients in bf16 (half the traffic; fp32 master weights)")
      ->group(group);
  cmd.add_option("--lr-scaling", settings.lr_scaling,
                 "none: --lr as given; linear: --lr x number of ranks (the global batch grows "
                 "by that factor; use --warmup)")
      ->group(group)
      ->capture_default_str();
  cmd.add_flag("--sync-bn", settings.sync_bn,
               "batch-norm statistics over the clips of all ranks (as one process with the "
               "global batch); default: each rank's own batch")
      ->group(group);
  cmd.add_option("--dist-timeout", settings.timeout,
                 "seconds a rank waits for the others in a collective before stopping the job "
                 "with an error (a rank died or hangs)")
      ->group(group)
      ->capture_default_str();
}

Device data_parallel_device(const dist::Communicator& comm, Device device,
                            const std::string& flag) {
  if (!device.is_cuda() || comm.size() == 1 || flag != "cuda") return device;
  return Device::cuda(comm.local_rank());
}

}  // namespace cu3d::apps
