// cu3d: the command line. One subcommand per job; `cu3d <command> --help` explains each.
#include "apps/app.h"

int main(int argc, char** argv) {
  return cu3d::apps::run_cli(argc, argv);
}
