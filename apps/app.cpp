#include "apps/app.h"

#include <cstdio>
#include <exception>
#include <string>

#include <fmt/format.h>

#include "apps/subcommands.h"
#include "engine/compute.h"
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

// "cu3d train --help" for the subcommand that was being parsed, else "cu3d --help".
std::string help_command(const CLI::App& app) {
  const auto parsed = app.get_subcommands();
  return parsed.empty() ? "cu3d --help" : "cu3d " + parsed.back()->get_name() + " --help";
}

// The Keras tool took `--skip False`; here --skip and --color are flags, so the value is left
// over as an argument nobody expected.
bool boolean_left_over(const CLI::ParseError& e) {
  const std::string message = e.what();
  for (const char* word : {"True", "False", "true", "false"})
    if (message.find(std::string("expected: ") + word) != std::string::npos) return true;
  return false;
}

// Prints "cu3d: error: <message>" on stderr after what the command printed on stdout so far, which
// a pipe or file buffers: in a log of both streams the error comes last, as it happened.
void report_error(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "cu3d: error: %s\n", message.c_str());
}

// CLI11's parse errors in cu3d's one-line form, pointing at the subcommand's help.
int report_parse_error(const CLI::App& app, const CLI::ParseError& e) {
  report_error(fmt::format(
      "{}{} (see {})", e.what(),
      boolean_left_over(e) ? "; --skip and --color are flags: use --skip=false or --no-skip" : "",
      help_command(app)));
  return e.get_exit_code();
}

}  // namespace

const std::string& current_command_line() {
  return g_command_line;
}

std::unique_ptr<CLI::App> make_app() {
  auto app = std::make_unique<CLI::App>(
      "cu3d: train and run 3D convolutional networks for video action recognition.\n"
      "Start with `cu3d synth`, `cu3d prep` and `cu3d train`; `cu3d <command> --help` explains "
      "each command.",
      "cu3d");
  app->require_subcommand(1);
  app->set_version_flag("--version", [] {
    return fmt::format("cu3d {}\ncpu: {}\ncuda: {}", CU3D_VERSION, describe_cpu_compute(),
                       describe_cuda_compute());
  });
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
  if (argc <= 1) {  // bare `cu3d`: the list of subcommands
    std::fputs(app->help().c_str(), stdout);
    return 0;
  }
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(*app, e);
  } catch (const ExitStatus& status) {
    return status.code;
  } catch (const Error& e) {
    report_error(e.what());
    return 1;
  } catch (const std::exception& e) {
    // Library failures (file system, OpenCV) that escaped a more specific message.
    report_error(e.what());
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
