#include "core/log.h"

#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace stepaudio::log {

void init_from_env() {
  static bool done = false;
  if (done) return;
  done = true;
  auto logger = spdlog::stderr_color_mt("stepaudio");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
  if (const char* lvl = std::getenv("STEPAUDIO_LOG")) {
    spdlog::set_level(spdlog::level::from_str(lvl));
  }
}

}  // namespace stepaudio::log
