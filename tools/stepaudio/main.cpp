// stepaudio: the command-line front end. Errors from the library arrive as stepaudio::Error and
// become one "error: ..." line on stderr and exit code 1; usage errors exit with 2.
#include <cstdio>
#include <exception>
#include <memory>

#include "command.h"
#include "core/error.h"
#include "core/log.h"

namespace stepaudio::cli {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
}  // namespace stepaudio::cli

int main(int argc, char** argv) {
  using namespace stepaudio;
  log::init_from_env();
  CLI::App app{"stepaudio: Step-Audio 2 inference engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "stepaudio 0.1.0");
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (auto& c : cli::registry()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runs.emplace_back(sub, c.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
