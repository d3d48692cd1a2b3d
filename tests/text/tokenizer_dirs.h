// Model folders for the tokenizer tests, built once per test binary in a temp dir: the official
// vocab.json + merges.txt layout (linked from ../shared/stepaudio2-mini) and the tokenizer.json
// form (gunzipped from tokenizer.json.gz). Missing data fails the test; nothing is skipped.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "../test_paths.h"
#include "text/tokenizer.h"

namespace stepaudio::testing_text {

namespace fs = std::filesystem;

// Removed when the test program exits.
struct ScratchDir {
  fs::path path;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

inline fs::path scratch_dir() {
  static const ScratchDir dir{[] {
    fs::path d = fs::temp_directory_path() / ("sa_text_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }()};
  return dir.path;
}

inline fs::path official_dir() { return testing_paths::shared() / "stepaudio2-mini"; }

// vocab.json + merges.txt + tokenizer_config.json + added_tokens.json + special_tokens_map.json.
inline fs::path vocab_merges_dir() {
  static const fs::path dir = [] {
    fs::path d = scratch_dir() / "vocab_merges";
    fs::create_directories(d);
    for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json",
                          "special_tokens_map.json"}) {
      const fs::path src = official_dir() / f;
      if (!fs::exists(src)) throw std::runtime_error("test data missing: " + src.string());
      if (!fs::exists(d / f)) fs::create_symlink(src, d / f);
    }
    return d;
  }();
  return dir;
}

inline fs::path tokenizer_json_dir() {
  static const fs::path dir = [] {
    fs::path d = scratch_dir() / "tokenizer_json";
    fs::create_directories(d);
    const fs::path gz = official_dir() / "tokenizer.json.gz";
    gzFile in = gzopen(gz.c_str(), "rb");
    if (!in) throw std::runtime_error("test data missing: " + gz.string());
    std::ofstream out(d / "tokenizer.json", std::ios::binary);
    char buf[1 << 16];
    int n;
    while ((n = gzread(in, buf, sizeof buf)) > 0) out.write(buf, n);
    const bool ok = n == 0;
    gzclose(in);
    if (!ok) throw std::runtime_error("cannot gunzip " + gz.string());
    return d;
  }();
  return dir;
}

inline const text::Tokenizer& vocab_merges_tokenizer() {
  static const text::Tokenizer t = text::Tokenizer::load(vocab_merges_dir());
  return t;
}
inline const text::Tokenizer& tokenizer_json_tokenizer() {
  static const text::Tokenizer t = text::Tokenizer::load(tokenizer_json_dir());
  return t;
}

}  // namespace stepaudio::testing_text
