// cu3d: the command line. One subcommand per job; `cu3d <command> --help` explains each.
#include <cstdio>

#include "apps/subcommands.h"
#include "kernels/error.h"

int main(int argc, char** argv) {
  CLI::App app{"cu3d: train and run 3D convolutional networks for video action recognition"};
  app.require_subcommand(1);
  cu3d::apps::add_toy_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cu3d::Error& e) {
    std::fprintf(stderr, "cu3d: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
