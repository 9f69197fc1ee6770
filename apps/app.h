// The cu3d command line as a library: the CLI11 app with every subcommand registered, and a runner
// that turns any failure into one line on stderr and a non-zero exit status. main() is run_cli;
// the tests and the fuzz targets call these directly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace cu3d::apps {

// The app with every subcommand. Each subcommand's callback owns the values its options parse
// into, so a caller that wants parsing alone (a fuzz target) must keep the callbacks and stop
// before them instead: a parse_complete_callback on the returned app runs after every option is
// converted and validated and before any subcommand's callback, and may throw.
std::unique_ptr<CLI::App> make_app();

// Parses and runs one command line; returns the process exit status.
int run_cli(int argc, const char* const* argv);
// The same with the arguments after the program name (tests).
int run_cli(const std::vector<std::string>& args);

// The command line run_cli is running, shell-quoted, for run folders to record.
const std::string& current_command_line();

// Thrown by a command that stops early but cleanly (Ctrl-C during training): run_cli returns
// `code` without printing an error.
struct ExitStatus {
  int code = 0;
};

}  // namespace cu3d::apps
