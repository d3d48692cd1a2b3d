// Paths the tests read. STEPAUDIO_SHARED_DIR is a CMake option (default ../shared beside the
// repository); tests that need it fail loudly when it is missing rather than skipping.
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace stepaudio::testing_paths {
inline std::filesystem::path shared() { return STEPAUDIO_SHARED_DIR; }
inline std::filesystem::path golden() { return shared() / "golden"; }
inline std::filesystem::path audio(const std::string& name) { return shared() / "audio" / name; }
inline std::filesystem::path source() { return STEPAUDIO_SOURCE_DIR; }
inline std::filesystem::path binary() { return STEPAUDIO_BINARY_DIR; }

// The whole file as bytes; throws (failing the test loudly) when it cannot be read.
inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace stepaudio::testing_paths
