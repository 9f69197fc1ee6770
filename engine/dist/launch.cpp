#include "engine/dist/launch.h"

#include <charconv>
#include <cstdlib>

#include "kernels/error.h"

namespace cu3d::dist {
namespace {

struct Variables {
  const char* launcher;
  const char* rank;
  const char* size;
  const char* local_rank;
};

// Checked in order: OpenMPI's own variables win over Slurm's when mpirun runs inside an
// allocation, and both over the generic ones (which a user may have left in the shell).
constexpr Variables kLaunchers[] = {
    {"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    // SLURM_STEP_NUM_TASKS is set by srun only: a batch script's own shell has SLURM_PROCID=0 and
    // SLURM_NTASKS=N but is one process, not rank 0 of N.
    {"srun", "PMIX_RANK", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"},
    {"srun", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"},
    {"srun", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    {"env", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
};

int parse(const char* name, const char* text) {
  int value = 0;
  const char* end = text + std::char_traits<char>::length(text);
  const auto [ptr, ec] = std::from_chars(text, end, value);
  CU3D_CHECK(ec == std::errc() && ptr == end && value >= 0,
             "environment variable {}='{}' is not a non-negative integer; unset it or fix the "
             "launcher",
             name, text);
  return value;
}

}  // namespace

LaunchInfo detect_launch(const GetEnv& getenv) {
  for (const Variables& v : kLaunchers) {
    const char* rank = getenv(v.rank);
    const char* size = getenv(v.size);
    if (rank == nullptr || size == nullptr) continue;
    LaunchInfo info;
    info.launcher = v.launcher;
    info.rank = parse(v.rank, rank);
    info.world_size = parse(v.size, size);
    const char* local = getenv(v.local_rank);
    info.local_rank = local == nullptr ? 0 : parse(v.local_rank, local);
    CU3D_CHECK(info.world_size >= 1 && info.rank < info.world_size,
               "{}={} is not a rank of a world of {}={}; check the launcher's variables", v.rank,
               info.rank, v.size, info.world_size);
    return info;
  }
  return {};
}

LaunchInfo detect_launch() {
  return detect_launch([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace cu3d::dist
