// stepaudio tokenize: JSON lines in, JSON lines out, for scripting and for checking the tokenizer
// against other implementations.
//   encode (default): {"text": "..."}  ->  {"ids": [...]}
//   --decode:         {"ids": [...]}   ->  {"text": "..."}
// A bad line stops the command with an error naming the line number (exit code 1); lines before
// it have already been answered on stdout. Blank lines are skipped.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "text/tokenizer.h"

namespace {

struct TokenizeArgs {
  std::string model_dir;
  bool decode = false;
  bool skip_special = false;
};

int run_tokenize(const TokenizeArgs& a) {
  using nlohmann::json;
  using stepaudio::fail;
  const auto tok = stepaudio::text::Tokenizer::load(a.model_dir);
  std::string line;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json in;
    try {
      in = json::parse(line);
    } catch (const json::exception& e) {
      fail("stdin line {}: not valid JSON: {}", line_no, e.what());
    }
    json out;
    if (!a.decode) {
      if (!in.is_object() || !in.contains("text") || !in["text"].is_string())
        fail("stdin line {}: expected an object with a string \"text\"", line_no);
      try {
        out["ids"] = tok.encode(in["text"].get_ref<const std::string&>());
      } catch (const stepaudio::Error& e) {
        fail("stdin line {}: {}", line_no, e.what());
      }
    } else {
      if (!in.is_object() || !in.contains("ids") || !in["ids"].is_array())
        fail("stdin line {}: expected an object with an array \"ids\"", line_no);
      std::vector<int32_t> ids;
      ids.reserve(in["ids"].size());
      for (const auto& v : in["ids"]) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size())
          fail("stdin line {}: \"ids\" holds {}, expected integers 0..{}", line_no, v.dump(),
               tok.vocab_size() - 1);
        ids.push_back(v.get<int32_t>());
      }
      try {
        out["text"] = tok.decode(ids, a.skip_special);
      } catch (const stepaudio::Error& e) {
        fail("stdin line {}: {}", line_no, e.what());
      }
    }
    const std::string s = out.dump(-1, ' ', false, json::error_handler_t::replace);
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fputc('\n', stdout);
  }
  if (std::cin.bad()) fail("stdin: read error after line {}", line_no);
  if (std::fflush(stdout) != 0) fail("stdout: write error");
  return 0;
}

static stepaudio::cli::Register reg(
    "tokenize", "Tokenize JSON lines from stdin ({\"text\"} -> {\"ids\"}, or back with --decode)",
    [](CLI::App& sub) {
      auto a = std::make_shared<TokenizeArgs>();
      sub.add_option("-m,--model", a->model_dir,
                     "Model folder with tokenizer.json, or vocab.json + merges.txt")
          ->required();
      sub.add_flag("--decode", a->decode, "Read {\"ids\": [...]} lines and write {\"text\": ...}");
      sub.add_flag("--skip-special", a->skip_special,
                   "With --decode: leave out special tokens (<|EOT|>, <audio_start>, ...)");
      return [a]() -> int { return run_tokenize(*a); };
    });

}  // namespace
