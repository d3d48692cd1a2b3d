// Shared by the token2wav tests: the token2wav-a goldens, a voice built from them (the golden
// flow case's prompt tokens, prompt mel and speaker embedding), temp folders, comparisons.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../test_paths.h"
#include "io/safetensors.h"
#include "model/token2wav.h"
#include "model/voice.h"

namespace stepaudio::t2w_test {

namespace fs = std::filesystem;

inline fs::path golden_dir() { return testing_paths::golden() / "token2wav-a"; }

inline const SafetensorsFile& goldens() {
  static const SafetensorsFile f =
      SafetensorsFile::open((golden_dir() / "goldens.safetensors").string());
  return f;
}

inline Tensor golden(const std::string& name) { return goldens().get(name).clone(); }

inline std::vector<int32_t> golden_ids(const std::string& name) {
  const Tensor t = goldens().get(name);
  EXPECT_EQ(t.dtype(), DType::I64) << name;
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numel(); ++i) ids.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
  return ids;
}

// The golden flow case's prompt as a voice.
inline Voice golden_voice() {
  Voice v;
  v.prompt_codes = golden_ids("flow/prompt_token");
  v.prompt_mel = golden("flow/prompt_feat");
  v.speaker_embedding = golden("flow/embedding");
  return v;
}

// The token2wav-a folder itself (flow.yaml, flow.pt, hift.pt), loaded once.
inline Token2wav& golden_t2w() {
  static Token2wav* t = new Token2wav(Token2wav::load(golden_dir().string()));
  return *t;
}

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() /
            (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }
  // Names of the entries (files and folders) in the folder.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

// Max |got - want| after checking the shapes; prints it with the reference's range.
inline double expect_close(const Tensor& got, const Tensor& want, double tol,
                           const std::string& what) {
  EXPECT_EQ(shape_str(got.shape()), shape_str(want.shape())) << what;
  if (got.shape() != want.shape()) return INFINITY;
  const auto a = got.to_f32_vector(), b = want.to_f32_vector();
  double max_abs = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= max_abs)) max_abs = d;  // NaN propagates as a failure
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  std::printf("    %-22s max abs err %.3g  (max |ref| %.3g, tolerance %.3g)\n", what.c_str(),
              max_abs, max_ref, tol);
  EXPECT_LE(max_abs, tol) << what;
  return max_abs;
}

}  // namespace stepaudio::t2w_test
