// `stepaudio tokenize` run as a program: JSON lines in and out, errors with line numbers.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "tokenizer_dirs.h"

using namespace stepaudio;
namespace fs = std::filesystem;

namespace {

struct Result {
  int status;
  std::string out, err;
};

// Runs the CLI with `input` on stdin; stdout and stderr are captured through files.
Result run_cli(const std::string& args, const std::string& input) {
  const fs::path bin = testing_paths::binary() / "stepaudio";
  if (!fs::exists(bin)) throw std::runtime_error("CLI not built: " + bin.string());
  const fs::path dir = testing_text::scratch_dir();
  const fs::path in = dir / "cli_in.txt", out = dir / "cli_out.txt", err = dir / "cli_err.txt";
  std::ofstream(in, std::ios::binary) << input;
  const std::string cmd = fmt::format("'{}' {} < '{}' > '{}' 2> '{}'", bin.string(), args,
                                      in.string(), out.string(), err.string());
  const int rc = std::system(cmd.c_str());
  const auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
}

std::string model_arg() {
  return "tokenize -m '" + testing_text::vocab_merges_dir().string() + "'";
}

}  // namespace

TEST(CliTokenize, EncodesAndDecodesJsonLines) {
  const auto r =
      run_cli(model_arg(), "{\"text\": \"Hello world\"}\n\n{\"text\": \"<|BOT|>human\\n你好\"}\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "{\"ids\":[9707,1879]}\n{\"ids\":[151666,25312,198,108386]}\n");
  const auto d = run_cli(model_arg() + " --decode", "{\"ids\":[151666,25312,198,108386]}\n");
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(nlohmann::json::parse(d.out).at("text"), "<|BOT|>human\n你好");
  const auto s = run_cli(model_arg() + " --decode --skip-special", "{\"ids\":[151666,9707]}\n");
  EXPECT_EQ(nlohmann::json::parse(s.out).at("text"), "Hello");
}

TEST(CliTokenize, BadLinesNameTheLineNumber) {
  const auto r = run_cli(model_arg(), "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "{\"ids\":[562]}\n");  // the good line before it was answered
  const auto j = run_cli(model_arg(), "{\"text\": \"ok\"}\n\n{not json\n");
  EXPECT_EQ(j.status, 1);
  EXPECT_NE(j.err.find("line 3"), std::string::npos) << j.err;
  const auto d = run_cli(model_arg() + " --decode", "{\"ids\": [1, 999999]}\n");
  EXPECT_EQ(d.status, 1);
  EXPECT_NE(d.err.find("line 1"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("999999"), std::string::npos) << d.err;
  const auto m = run_cli("tokenize -m /nonexistent/model", "");
  EXPECT_EQ(m.status, 1);
  EXPECT_NE(m.err.find("/nonexistent/model"), std::string::npos) << m.err;
}
