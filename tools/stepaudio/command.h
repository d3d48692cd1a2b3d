// Each subcommand of the `stepaudio` CLI lives in its own cmd_*.cpp and registers itself here,
// so adding a command never touches main.cpp. The CLI is written against the public API and the
// library's module headers; it holds no model logic.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace stepaudio::cli {

// setup() adds options to `sub` and returns the function that runs the command (exit code).
using Setup = std::function<std::function<int()>(CLI::App& sub)>;

struct Command {
  std::string name, help;
  Setup setup;
};

std::vector<Command>& registry();

struct Register {
  Register(std::string name, std::string help, Setup setup) {
    registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

}  // namespace stepaudio::cli
