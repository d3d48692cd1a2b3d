// A model folder for tests: the tiny-a checkpoint of the goldens (config, shards, index) linked
// into a temporary folder together with the real tokenizer files, because the tokenizer links
// inside golden/tiny-a may have been flattened into small text files holding a path.
#pragma once
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <string>

#include "../test_paths.h"

namespace stepaudio::testing_paths {

class TempModelDir {
 public:
  TempModelDir() {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "stepaudio-model-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    dir_ = tmpl;
    const fs::path tiny = golden() / "tiny-a";
    const fs::path tokdir = source() / "assets" / "tokenizer";
    if (!fs::exists(tiny / "config.json"))
      throw std::runtime_error("golden model missing: " + (tiny / "config.json").string());
    for (const auto& e : fs::directory_iterator(tiny)) {
      const std::string name = e.path().filename().string();
      if (name == "config.json" || name == "model.safetensors.index.json" ||
          e.path().extension() == ".safetensors") {
        if (name == "goldens.safetensors") continue;
        fs::create_symlink(e.path(), dir_ / name);
      }
    }
    for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json",
                          "special_tokens_map.json"}) {
      if (!fs::exists(tokdir / f))
        throw std::runtime_error("tokenizer file missing: " + (tokdir / f).string());
      fs::create_symlink(tokdir / f, dir_ / f);
    }
  }
  ~TempModelDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempModelDir(const TempModelDir&) = delete;
  TempModelDir& operator=(const TempModelDir&) = delete;

  const std::filesystem::path& path() const { return dir_; }
  std::string str() const { return dir_.string(); }

 private:
  std::filesystem::path dir_;
};

inline std::filesystem::path goldens_file() { return golden() / "tiny-a" / "goldens.safetensors"; }

}  // namespace stepaudio::testing_paths
