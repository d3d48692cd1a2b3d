// Shared fixtures for the model tests: the tiny-a checkpoint (opened from a temp folder that
// links its weights, since the tokenizer files in golden/tiny-a may be lost symlinks), its
// goldens and manifest, and comparison helpers.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace stepaudio::testing_model {

namespace fs = std::filesystem;

inline fs::path tiny_dir() { return testing_paths::golden() / "tiny-a"; }

// A folder holding links to tiny-a's config, index and shards plus the real tokenizer files.
inline fs::path tiny_model_dir() {
  static const fs::path dir = [] {
    const fs::path src = tiny_dir();
    if (!fs::exists(src / "config.json"))
      throw std::runtime_error("test data missing: " + (src / "config.json").string());
    fs::path d = fs::temp_directory_path() / ("sa_model_tiny_" + std::to_string(::getpid()));
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(src)) {
      const std::string n = e.path().filename().string();
      if (n == "config.json" || (n.ends_with(".safetensors") && n.starts_with("model")) ||
          n == "model.safetensors.index.json") {
        fs::remove(d / n);
        fs::create_symlink(fs::absolute(e.path()), d / n);
      }
    }
    const fs::path tok = testing_paths::shared() / "stepaudio2-mini";
    for (const char* n : {"vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json",
                          "special_tokens_map.json"})
      if (fs::exists(tok / n) && !fs::exists(d / n)) fs::create_symlink(tok / n, d / n);
    return d;
  }();
  // The folder holds only links; it goes when the test binary exits.
  struct RemoveAtExit {
    fs::path p;
    ~RemoveAtExit() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  };
  static const RemoveAtExit cleanup{dir};
  return dir;
}

inline const Checkpoint& tiny_checkpoint() {
  static const Checkpoint ckpt = Checkpoint::open(tiny_model_dir().string());
  return ckpt;
}

inline const SafetensorsFile& goldens() {
  static const SafetensorsFile f =
      SafetensorsFile::open((tiny_dir() / "goldens.safetensors").string());
  return f;
}

inline const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream in(tiny_dir() / "manifest.json");
    if (!in) throw std::runtime_error("test data missing: manifest.json");
    return nlohmann::json::parse(in);
  }();
  return m;
}

inline Tensor golden(const std::string& name) { return goldens().get(name); }

inline std::vector<int64_t> golden_i64(const std::string& name) {
  Tensor t = golden(name);
  EXPECT_EQ(t.dtype(), DType::I64) << name;
  const int64_t* p = t.data<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

inline std::vector<int32_t> golden_ids(const std::string& name) {
  std::vector<int32_t> out;
  for (int64_t v : golden_i64(name)) out.push_back(static_cast<int32_t>(v));
  return out;
}

// Max |a - b|; fails the test (and returns +inf) when the shapes differ.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel()) {
    ADD_FAILURE() << "size mismatch: " << a.desc() << " vs " << b.desc();
    return INFINITY;
  }
  const std::vector<float> x = a.to_f32_vector(), y = b.to_f32_vector();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::fabs(static_cast<double>(x[i]) - y[i]);
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

inline std::vector<std::string> cases_with(const std::string& kind_prefix) {
  std::vector<std::string> out;
  for (const auto& [name, c] : manifest().at("cases").items())
    if (c.at("kind").get<std::string>().starts_with(kind_prefix)) out.push_back(name);
  return out;
}

}  // namespace stepaudio::testing_model
