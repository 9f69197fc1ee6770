#include "apps/app.h"

#include <cstdio>
#include <exception>

#include "apps/subcommands.h"
#include "kernels/error.h"

namespace cu3d::apps {

namespace {

std::string g_command_line;

std::string shell_quoted(const char* const* argv, int argc) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool plain = !arg.empty() && arg.find_first_not_of(
                                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_=./:,+@") == std::string::npos;
    if (i > 0) line += ' ';
    line += plain ? arg : "'" + arg + "'";
  }
  return line;
}

}  // namespace

const std::string& current_command_line() {
  return g_command_line;
}

std::unique_ptr<CLI::App> make_app() {
  auto app = std::make_unique<CLI::App>(
      "cu3d: train and run 3D convolutional networks for video action recognition.\n"
      "Start with `cu3d synth`, `cu3d prep` and `cu3d train`; `cu3d <command> --help` explains "
      "each command.");
  app->require_subcommand(1);
  add_synth_command(*app);
  add_prep_command(*app);
  add_train_command(*app);
  add_eval_command(*app);
  add_predict_command(*app);
  add_export_command(*app);
  add_visualize_command(*app);
  add_summary_command(*app);
  add_toy_command(*app);
  return app;
}

int run_cli(int argc, const char* const* argv) {
  auto app = make_app();
  g_command_line = shell_quoted(argv, argc);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app->exit(e);
  } catch (const ExitStatus& status) {
    return status.code;
  } catch (const Error& e) {
    std::fprintf(stderr, "cu3d: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Library failures (file system, OpenCV) that escaped a more specific message.
    std::fprintf(stderr, "cu3d: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

int run_cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"cu3d"};
  for (const std::string& arg : args)
    argv.push_back(arg.c_str());
  return run_cli(int(argv.size()), argv.data());
}

}  // namespace cu3d::apps
