// The cli target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "apps/app.h"

namespace cu3d::fuzz {

namespace {

// Thrown where the command line has been parsed and validated, to stop before any command runs.
struct ParsedOnly {};

// One argument per line of the input, after the program name.
std::vector<std::string> command_line_arguments(std::string_view text) {
  std::vector<std::string> args{"cu3d"};
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    args.emplace_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return args;
}

}  // namespace

// apps/: the `cu3d` command line. Every option's conversion and validator runs, but no command:
// the top-level app's parse-complete callback, which CLI11 runs after every option is converted
// and checked and before any subcommand's callback, throws ParsedOnly. (Clearing the subcommands'
// callbacks instead, as make_app(false) does, frees the option values their lambdas own, and
// parsing then writes into freed memory.) Accepted: parsed, or a request for help; rejected: a
// CLI::ParseError (an unknown, missing or malformed argument) or a cu3d::Error from a validator.
bool parse_command_line_input(Bytes bytes) {
  const std::unique_ptr<CLI::App> app = apps::make_app();
  app->parse_complete_callback([] { throw ParsedOnly{}; });
  const std::vector<std::string> args = command_line_arguments(as_text(bytes));
  std::vector<const char*> argv;
  for (const std::string& arg : args)
    argv.push_back(arg.c_str());
  try {
    app->parse(int(argv.size()), argv.data());
    return true;
  } catch (const ParsedOnly&) {
    return true;
  } catch (const CLI::CallForHelp&) {
    return true;
  } catch (const CLI::CallForAllHelp&) {
    return true;
  } catch (const CLI::ParseError&) {
    return false;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace cu3d::fuzz
