// The `stepaudio run` and `stepaudio trace` commands, run as a user would: trace output compared
// with the official goldens (golden README §7 tolerances), run's exit codes and messages on bad
// input, and no output file left behind on failure.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../engine/model_dir.h"
#include "io/safetensors.h"

using namespace stepaudio;
namespace tp = stepaudio::testing_paths;
namespace fs = std::filesystem;

namespace {

struct Proc {
  int rc = -1;
  std::string out, err;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A scratch folder per test, removed afterwards.
class Scratch {
 public:
  Scratch() {
    std::string t = (fs::temp_directory_path() / "stepaudio-cli-XXXXXX").string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = t;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path operator/(const std::string& name) const { return dir_ / name; }
  const fs::path& path() const { return dir_; }
  size_t count() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}));
  }

 private:
  fs::path dir_;
};

Proc run_cli(const std::vector<std::string>& args) {
  const fs::path bin = tp::binary() / "stepaudio";
  if (!fs::exists(bin)) throw std::runtime_error("CLI binary missing: " + bin.string());
  Scratch io;
  std::string cmd = quote(bin.string());
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on `" " + std::string&&`.
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  // `run` uses the GPU when there is one; the goldens are checked on the CPU reference path.
  if (!args.empty() && args[0] == "run") cmd += " --device cpu";
  cmd += " >";
  cmd += quote((io / "out").string());
  cmd += " 2>";
  cmd += quote((io / "err").string());
  Proc p;
  const int st = std::system(cmd.c_str());
  p.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  p.out = slurp(io / "out");
  p.err = slurp(io / "err");
  return p;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return m;
}

// The golden README §7 bounds for a float32 port, end to end (our own mel feeds the encoder).
double tolerance(const std::string& name) {
  if (name.ends_with("/mel")) return 2e-4;
  return 1e-4;
}

// Compares every tensor the golden file has for `c` that trace is meant to write.
void compare_with_goldens(const fs::path& traced, const std::string& c) {
  SafetensorsFile mine = SafetensorsFile::open(traced.string());
  SafetensorsFile gold = SafetensorsFile::open(tp::goldens_file().string());
  // Golden tensors that describe the batch internals rather than a result are not traced.
  const std::set<std::string> internal{"encoder_blocks_in", "encoder_key_bias", "wav_lens",
                                       "encoder_out_single"};
  std::set<std::string> expected;
  for (const auto& [name, info] : gold.tensors()) {
    if (!name.starts_with(c + "/")) continue;
    const std::string local = name.substr(c.size() + 1);
    const std::string leaf = local.substr(local.rfind('/') + 1);
    if (internal.count(leaf)) continue;
    expected.insert(local);
    ASSERT_TRUE(mine.has(local)) << "trace lacks " << local;
    Tensor g = gold.get(name), m = mine.get(local);
    ASSERT_EQ(m.shape(), g.shape()) << local;
    ASSERT_EQ(m.dtype(), g.dtype()) << local;
    if (g.dtype() == DType::I64) {
      for (int64_t i = 0; i < g.numel(); ++i)
        ASSERT_EQ(m.data<int64_t>()[i], g.data<int64_t>()[i]) << local << " element " << i;
    } else {
      const double d = max_abs_diff(m, g);
      EXPECT_LE(d, tolerance(local)) << local;
      ::testing::Test::RecordProperty(local, std::to_string(d));
    }
  }
  std::set<std::string> written;
  for (const auto& [name, info] : mine.tensors()) written.insert(name);
  EXPECT_EQ(written, expected) << "trace wrote other tensors than the goldens have";
  EXPECT_GE(expected.size(), 8u);
}

class Cli : public ::testing::Test {
 protected:
  tp::TempModelDir model;
  Scratch scratch;
};

}  // namespace

TEST_F(Cli, TraceAsrMatchesGoldens) {
  const fs::path out = scratch / "en_hello.safetensors";
  Proc p = run_cli({"trace", "-m", model.str(), "-f", tp::audio("en_hello_3s.wav").string(), "-o",
                    out.string()});
  ASSERT_EQ(p.rc, 0) << p.err;
  compare_with_goldens(out, "en_hello_3s");
}

TEST_F(Cli, TraceTwoChunksMatchesGoldens) {
  const fs::path out = scratch / "long.safetensors";
  Proc p = run_cli({"trace", "-m", model.str(), "-f", tp::audio("en_long_31s.wav").string(), "-o",
                    out.string(), "--greedy", "16"});
  ASSERT_EQ(p.rc, 0) << p.err;
  compare_with_goldens(out, "en_long_31s");
}

TEST_F(Cli, TraceTextOnlyMatchesGoldens) {
  const fs::path out = scratch / "text.safetensors";
  Proc p = run_cli({"trace", "-m", model.str(), "-o", out.string()});
  ASSERT_EQ(p.rc, 0) << p.err;
  compare_with_goldens(out, "text_2plus2");
}

TEST_F(Cli, RunAsrStreamsTheGreedyAnswer) {
  Proc p = run_cli({"run", "-m", model.str(), "-f", tp::audio("en_hello_3s.wav").string(),
                    "--max-tokens", "16", "--precision", "f32"});
  ASSERT_EQ(p.rc, 0) << p.err;
  std::ifstream in(tp::golden() / "tiny-a" / "manifest.json");
  const auto m = nlohmann::json::parse(in);
  EXPECT_EQ(p.out, m.at("cases").at("en_hello_3s").at("greedy_text").get<std::string>() + "\n");
  EXPECT_NE(p.err.find("prefill 61 tok"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("decode 16 tok"), std::string::npos) << p.err;
}

TEST_F(Cli, RunTextOnlyWritesAudioCodes) {
  const fs::path txt = scratch / "codes.txt";
  const fs::path json = scratch / "codes.json";
  // text_2plus2 greedy: its 16 ids are mostly audio tokens
  for (const auto& f : {txt, json}) {
    Proc p = run_cli({"run", "-m", model.str(), "--prompt", "What is 2+2?", "--temp", "0",
                      "--max-tokens", "16", "--audio-codes", f.string()});
    ASSERT_EQ(p.rc, 0) << p.err;
    ASSERT_TRUE(fs::exists(f));
  }
  SafetensorsFile gold = SafetensorsFile::open(tp::goldens_file().string());
  Tensor ids = gold.get("text_2plus2/greedy_ids");
  std::vector<int64_t> codes;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const int64_t id = ids.data<int64_t>()[i];
    if (id > 151695 && id - 151696 < 6561) codes.push_back(id - 151696);
  }
  ASSERT_FALSE(codes.empty());
  std::string lines;
  for (auto c : codes) lines += std::to_string(c) + "\n";
  EXPECT_EQ(slurp(txt), lines);
  EXPECT_EQ(nlohmann::json::parse(slurp(json)).get<std::vector<int64_t>>(), codes);
}

TEST_F(Cli, RunMissingModelFails) {
  const fs::path codes = scratch / "codes.txt";
  Proc p = run_cli(
      {"run", "-m", "/nonexistent/model", "--prompt", "hi", "--audio-codes", codes.string()});
  EXPECT_NE(p.rc, 0);
  EXPECT_NE(p.err.find("error:"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("/nonexistent/model"), std::string::npos) << p.err;
  EXPECT_EQ(scratch.count(), 0u) << "an output file was created";
}

TEST_F(Cli, RunMissingAudioFails) {
  const fs::path codes = scratch / "codes.txt";
  Proc p = run_cli(
      {"run", "-m", model.str(), "-f", "/nonexistent/clip.wav", "--audio-codes", codes.string()});
  EXPECT_NE(p.rc, 0);
  EXPECT_NE(p.err.find("/nonexistent/clip.wav"), std::string::npos) << p.err;
  EXPECT_EQ(scratch.count(), 0u);
}

TEST_F(Cli, RunBadAudioFails) {
  const fs::path bad = scratch / "not_audio.wav";
  std::ofstream(bad) << "this is not a wav file";
  const fs::path codes = scratch / "codes.txt";
  Proc p = run_cli({"run", "-m", model.str(), "-f", bad.string(), "--audio-codes", codes.string()});
  EXPECT_NE(p.rc, 0);
  EXPECT_NE(p.err.find("not_audio.wav"), std::string::npos) << p.err;
  EXPECT_FALSE(fs::exists(codes));
}

TEST_F(Cli, BenchReportsPrefillAndBatchedDecode) {
  Proc p = run_cli({"bench", "-m", model.str(), "--device", "cpu", "--ctx", "24", "--batch", "3",
                    "--steps", "5"});
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_NE(p.out.find("prefill    3 x 24 tokens"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("decode     batch 3 at 24 context"), std::string::npos) << p.out;
  // More positions than the model has: a clear error, not a crash.
  p = run_cli({"bench", "-m", model.str(), "--device", "cpu", "--ctx", "100000"});
  EXPECT_EQ(p.rc, 1);
  EXPECT_NE(p.err.find("exceed the model's"), std::string::npos) << p.err;
  EXPECT_EQ(run_cli({"bench", "-m", model.str(), "--batch", "0"}).rc, 2);
}

TEST_F(Cli, RunBadOptionsFail) {
  // usage errors (CLI11) exit 2; bad values caught by the library exit 1
  EXPECT_EQ(run_cli({"run", "-m", model.str(), "--prompt", "hi", "--task", "nope"}).rc, 2);
  EXPECT_EQ(run_cli({"run", "--prompt", "hi"}).rc, 2);  // -m is required
  EXPECT_EQ(run_cli({"run", "-m", model.str(), "--prompt", "hi", "--precision", "fp8"}).rc, 2);
  Proc p = run_cli({"run", "-m", model.str(), "--prompt", "hi", "--top-p", "0"});
  EXPECT_EQ(p.rc, 1);
  EXPECT_NE(p.err.find("top_p"), std::string::npos) << p.err;
  p = run_cli({"run", "-m", model.str(), "--task", "asr"});
  EXPECT_EQ(p.rc, 1);
  EXPECT_NE(p.err.find("-f"), std::string::npos) << p.err;
  p = run_cli({"run", "-m", model.str()});
  EXPECT_EQ(p.rc, 1);
}

TEST_F(Cli, TraceBadInputLeavesNoFile) {
  const fs::path out = scratch / "t.safetensors";
  Proc p = run_cli({"trace", "-m", model.str(), "-f", "/nonexistent/a.wav", "-o", out.string()});
  EXPECT_NE(p.rc, 0);
  EXPECT_NE(p.err.find("/nonexistent/a.wav"), std::string::npos) << p.err;
  p = run_cli({"trace", "-m", "/nonexistent/model", "-o", out.string()});
  EXPECT_NE(p.rc, 0);
  EXPECT_NE(p.err.find("/nonexistent/model"), std::string::npos) << p.err;
  EXPECT_EQ(scratch.count(), 0u);
}
