// libFuzzer target for the `cu3d` command line (apps/): each line of the input is one argument.
// Parsing runs every option's conversion and validator but no subcommand's work: the top-level
// app's parse-complete callback, which CLI11 runs after all options are converted and checked and
// before any subcommand's callback, throws ParsedOnly, so `cu3d toy` trains nothing. (Clearing the
// subcommands' callbacks instead, as make_app(false) does, frees the option values their lambdas
// own: the options then write into freed memory.) ParsedOnly,
// CLI::ParseError (a bad or missing argument, --help) and cu3d::Error are the expected outcomes.
#include <string>
#include <vector>

#include "apps/app.h"
#include "kernels/error.h"

namespace {

struct ParsedOnly {};

std::vector<std::string> split_lines(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"cu3d"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != '\n') {
      current += char(data[i]);
      continue;
    }
    args.push_back(std::move(current));
    current.clear();
  }
  if (!current.empty()) args.push_back(std::move(current));
  return args;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::unique_ptr<CLI::App> app = cu3d::apps::make_app();
  app->parse_complete_callback([] { throw ParsedOnly{}; });
  const std::vector<std::string> args = split_lines(data, size);
  std::vector<const char*> argv;
  for (const std::string& arg : args)
    argv.push_back(arg.c_str());
  try {
    app->parse(int(argv.size()), argv.data());
  } catch (const ParsedOnly&) {
  } catch (const CLI::ParseError&) {
  } catch (const cu3d::Error&) {
  }
  return 0;
}
