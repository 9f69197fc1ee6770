// cu3d: the command line. One subcommand per job; `cu3d <command> --help` explains each.
#include "apps/app.h"
#include "kernels/cpu/blas_core.h"

int main(int argc, char** argv) {
  cu3d::cpu::restart_with_better_blas_core(argv);
  return cu3d::apps::run_cli(argc, argv);
}
