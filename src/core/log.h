// Logging goes to stderr through spdlog so stdout stays clean for results (ids, JSON, text).
#pragma once
#include <spdlog/spdlog.h>

namespace stepaudio::log {
// Reads STEPAUDIO_LOG (trace|debug|info|warn|error|off); default info.
void init_from_env();
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;
}  // namespace stepaudio::log
