// Tokenizer behaviour beyond the golden strings: added-token flags on a small hand-made
// tokenizer.json (expected ids produced by the Hugging Face tokenizers library 0.22.2 from the
// same file), file errors, invalid input, and decoding edge cases.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/pretokenize.h"
#include "text/utf8.h"
#include "tokenizer_dirs.h"

using namespace stepaudio;
using nlohmann::json;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// 256 byte tokens (id = byte value), 10 merges (ids 256..265) and 6 added tokens (266..271).
json synthetic_tokenizer_json() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[text::byte_level_encode(std::string(1, static_cast<char>(b)))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"},  {"l", "l"}, {"he", "ll"},  {"hell", "o"},  {"Ġ", "w"},
      {"Ġw", "o"}, {"r", "l"}, {"Ġwo", "rl"}, {"Ġworl", "d"}, {"Ġ", "Ġ"}};
  json jm = json::array();
  for (const auto& [a, b] : merges) {
    vocab[a + b] = static_cast<int>(vocab.size());
    jm.push_back(json::array({a, b}));
  }
  const auto added = [](int id, const char* c, bool single_word, bool lstrip, bool rstrip,
                        bool normalized, bool special) {
    return json{{"id", id},          {"content", c},     {"single_word", single_word},
                {"lstrip", lstrip},  {"rstrip", rstrip}, {"normalized", normalized},
                {"special", special}};
  };
  json j;
  j["version"] = "1.0";
  j["added_tokens"] = json::array({added(266, "<ls>", false, true, false, false, true),
                                   added(267, "<rs>", false, false, true, false, true),
                                   added(268, "word", true, false, false, false, false),
                                   added(269, "café", false, false, false, true, false),
                                   added(270, "<x>", false, false, false, false, true),
                                   added(271, "<x>y", false, false, false, false, false)});
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Split"},
                     {"pattern", {{"Regex", std::string(text::kQwen2Pattern)}}},
                     {"behavior", "Isolated"},
                     {"invert", false}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", jm}};
  return j;
}

const text::Tokenizer& synthetic() {
  static const text::Tokenizer t = [] {
    const fs::path d = testing_text::scratch_dir() / "synthetic";
    write(d / "tokenizer.json", synthetic_tokenizer_json().dump());
    return text::Tokenizer::load(d);
  }();
  return t;
}

// Runs fn and checks that it throws Error whose message contains every needle.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message \"" << e.what() << "\" lacks \"" << n << "\"";
  }
}

}  // namespace

TEST(AddedTokens, FlagsMatchHuggingFace) {
  // Expected ids: HF tokenizers 0.22.2 (Tokenizer.from_file on this same JSON).
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"a  <ls>b", {97, 266, 98}},  // lstrip eats the spaces before
      {"<ls>", {266}},
      {"x<ls>  <ls>y", {120, 266, 266, 121}},
      {"a<rs>  b", {97, 267, 98}},  // rstrip eats the spaces after
      {"<rs> \n z", {267, 122}},
      {"word", {268}},  // single_word: only between non-word chars
      {"a word b", {97, 32, 268, 32, 98}},
      {"aword", {97, 119, 111, 114, 100}},
      {"word_", {119, 111, 114, 100, 95}},
      {"words", {119, 111, 114, 100, 115}},
      {" word,", {32, 268, 44}},
      {"café", {269}},  // normalized: matched after NFC
      {"cafe\xCC\x81", {269}},
      {"cafe\xCC\x81s", {269, 115}},
      {"xcafé", {120, 269}},
      {"<x>y", {271}},  // leftmost-longest
      {"<x>z", {270, 122}},
      {"<x><x>y", {270, 271}},
      {"hello world", {259, 264}},
      {"  <ls>  <rs>  ", {266, 265, 267}},
      {"w\xC3\xB6rd word\xCC\x81 word",
       {119, 195, 182, 114, 100, 261, 114, 100, 204, 129, 32, 268}},
  };
  for (const auto& [s, ids] : cases) EXPECT_EQ(synthetic().encode(s), ids) << json(s).dump();
}

TEST(AddedTokens, DecodeKeepsOrSkipsSpecials) {
  const auto& t = synthetic();
  EXPECT_EQ(t.decode(Ids{259, 266, 264}), "hello<ls> world");
  EXPECT_EQ(t.decode(Ids{259, 266, 264}, /*skip_special_tokens=*/true), "hello world");
  EXPECT_EQ(t.decode(Ids{268, 269}, true), "wordcafé");  // not special: kept
}

TEST(Tokenizer, RejectsInvalidUtf8) {
  const auto& t = testing_text::vocab_merges_tokenizer();
  expect_error([&] { t.encode("ok \xFF bad"); }, {"not valid UTF-8", "offset 3"});
  expect_error([&] { t.encode("\xE4\xBD"); }, {"not valid UTF-8", "offset 0"});
  expect_error([&] { t.encode("\xED\xA0\x80"); }, {"not valid UTF-8"});  // a surrogate
}

TEST(Tokenizer, DecodeRejectsUnknownIdsAndReplacesBrokenUtf8) {
  const auto& t = testing_text::vocab_merges_tokenizer();
  expect_error([&] { t.decode(Ids{9707, 158352}); }, {"158352", "not in the vocabulary"});
  expect_error([&] { t.decode(Ids{-1}); }, {"-1"});
  const Ids ni_hao = t.encode("你好");
  ASSERT_EQ(ni_hao, (Ids{108386}));
  // A token that is half of a character decodes to U+FFFD, as HF decode does.
  const auto bytes = t.token_bytes(108386);
  ASSERT_EQ(bytes, "你好");
  const Ids e4 = {t.token_to_id(text::byte_level_encode("\xE4")).value()};
  EXPECT_EQ(t.decode(e4), "\xEF\xBF\xBD");
  EXPECT_EQ(t.decode(Ids{e4[0], 9707}), "\xEF\xBF\xBDHello");
}

TEST(Tokenizer, EmbeddedNulAndControlCharacters) {
  const auto& t = testing_text::vocab_merges_tokenizer();
  const std::string s("a\0b\x01\x7F", 5);
  const Ids ids = t.encode(s);
  EXPECT_EQ(t.decode(ids), s);
}

TEST(Tokenizer, FolderErrorsNameTheFile) {
  const fs::path base = testing_text::scratch_dir() / "errors";
  const fs::path official = testing_text::official_dir();
  // Missing folder / empty folder.
  expect_error([&] { text::Tokenizer::load(base / "nope"); }, {"nope", "not a folder"});
  fs::create_directories(base / "empty");
  expect_error([&] { text::Tokenizer::load(base / "empty"); }, {"no tokenizer found"});
  // vocab.json without merges.txt.
  const fs::path d1 = base / "no_merges";
  fs::create_directories(d1);
  fs::copy_file(official / "vocab.json", d1 / "vocab.json", fs::copy_options::overwrite_existing);
  expect_error([&] { text::Tokenizer::load(d1); }, {"merges.txt", "missing"});
  // Malformed merge line.
  write(d1 / "merges.txt", "#version: 0.2\nĠ Ġ\nthis line has three\n");
  expect_error([&] { text::Tokenizer::load(d1); }, {"merges.txt", "line 3", "malformed merge"});
  // A merge whose parts are not tokens.
  write(d1 / "merges.txt", "#version: 0.2\nĠ Ġ\nqqqqzz qqqqzz\n");
  expect_error([&] { text::Tokenizer::load(d1); }, {"merge 2", "not in the vocabulary"});
  // Bad JSON, and a "lost symlink" stub.
  const fs::path d2 = base / "bad_json";
  write(d2 / "vocab.json", "{\"a\": 1,");
  write(d2 / "merges.txt", "#version: 0.2\n");
  expect_error([&] { text::Tokenizer::load(d2); }, {"vocab.json", "not valid JSON"});
  write(d2 / "vocab.json", "../../stepaudio2-mini/vocab.json");
  expect_error([&] { text::Tokenizer::load(d2); }, {"vocab.json", "symbolic link"});
  // A vocabulary that lacks byte tokens.
  write(d2 / "vocab.json", "{\"a\": 0, \"b\": 1}");
  expect_error([&] { text::Tokenizer::load(d2); }, {"single-byte token"});
  // Added tokens with a bad flag.
  const fs::path d3 = base / "bad_added";
  fs::create_directories(d3);
  for (const char* f : {"vocab.json", "merges.txt"})
    fs::copy_file(official / f, d3 / f, fs::copy_options::overwrite_existing);
  write(d3 / "tokenizer_config.json",
        R"({"added_tokens_decoder": {"151643": {"content": "<|endoftext|>", "special": "yes"}}})");
  expect_error([&] { text::Tokenizer::load(d3); }, {"tokenizer_config.json", "special"});
  write(d3 / "tokenizer_config.json",
        R"({"added_tokens_decoder": {"x1": {"content": "<|endoftext|>"}}})");
  expect_error([&] { text::Tokenizer::load(d3); }, {"\"x1\"", "not a token id"});
}

TEST(Tokenizer, TokenizerJsonErrors) {
  const fs::path d = testing_text::scratch_dir() / "json_errors";
  json j = synthetic_tokenizer_json();
  j["model"]["merges"][3] = "h e l";
  write(d / "tokenizer.json", j.dump());
  expect_error([&] { text::Tokenizer::load(d); }, {"tokenizer.json", "merge 4"});
  j = synthetic_tokenizer_json();
  j["model"]["type"] = "WordPiece";
  write(d / "tokenizer.json", j.dump());
  expect_error([&] { text::Tokenizer::load(d); }, {"tokenizer.json", "only BPE"});
  j = synthetic_tokenizer_json();
  j["normalizer"] = {{"type", "Lowercase"}};
  write(d / "tokenizer.json", j.dump());
  expect_error([&] { text::Tokenizer::load(d); }, {"normalizer", "not supported"});
  j = synthetic_tokenizer_json();
  j["added_tokens"][1]["id"] = 266;
  write(d / "tokenizer.json", j.dump());
  expect_error([&] { text::Tokenizer::load(d); }, {"id 266", "two added tokens"});
  // Merges as "a b" strings load like pairs.
  j = synthetic_tokenizer_json();
  for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  write(d / "tokenizer.json", j.dump());
  EXPECT_EQ(text::Tokenizer::load(d).encode("hello world"), (Ids{259, 264}));
}

TEST(Tokenizer, AddedTokensJsonFallback) {
  // Without added_tokens_decoder, transformers takes added_tokens.json; tokens named in
  // special_tokens_map.json become special and unnormalized, the others normalized.
  const fs::path d = testing_text::scratch_dir() / "added_json";
  fs::create_directories(d);
  const fs::path official = testing_text::official_dir();
  for (const char* f : {"vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json"})
    fs::copy_file(official / f, d / f, fs::copy_options::overwrite_existing);
  const auto t = text::Tokenizer::load(d);
  EXPECT_EQ(t.added_tokens().size(), 6709u);
  EXPECT_TRUE(t.is_special(151665));   // <|EOT|> is in additional_special_tokens
  EXPECT_FALSE(t.is_special(151696));  // <audio_0> is not
  const auto& ref = testing_text::vocab_merges_tokenizer();
  for (const char* s : {"<|BOT|>human\nhi<|EOT|>", "<audio_17><audio_6656> x", "<tts_start>ok"})
    EXPECT_EQ(t.encode(s), ref.encode(s)) << s;
}

TEST(PreTokenizer, SplitsLikeTheQwen2Regex) {
  text::PreTokenizer p(text::kQwen2Pattern, "test");
  std::vector<std::string> words;
  p.split("Hello world, 你好！ 123  \n\n It's   ok",
          [&](std::string_view w) { words.emplace_back(w); });
  EXPECT_EQ(words, (std::vector<std::string>{"Hello", " world", ",", " 你好", "！", " ", "1", "2",
                                             "3", "  \n\n", " It", "'s", "  ", " ok"}));
  // A non-letter may lead a letter run; newlines and spaces group.
  words.clear();
  p.split(
      "a \xC2\x85"
      "b\r\n\r\nx",
      [&](std::string_view w) { words.emplace_back(w); });
  EXPECT_EQ(words, (std::vector<std::string>{"a", " ",
                                             "\xC2\x85"
                                             "b",
                                             "\r\n\r\n", "x"}));
  EXPECT_THROW(text::PreTokenizer("(unclosed", "test"), Error);
}

TEST(Utf8, LossyDecodingUsesMaximalSubparts) {
  EXPECT_EQ(text::utf8_lossy("ok"), "ok");
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(text::utf8_lossy("\xE4\xBD"), r);  // one truncated sequence: one U+FFFD
  EXPECT_EQ(text::utf8_lossy("\xE4\xBD"
                             "a"),
            r + "a");
  EXPECT_EQ(text::utf8_lossy("\xF0\x80\x80"), r + r + r);          // overlong lead: each byte
  EXPECT_EQ(text::utf8_lossy("\xED\xA0\x80"), r + r + r);          // surrogate
  EXPECT_EQ(text::utf8_lossy("\xF4\x90\x80\x80"), r + r + r + r);  // > U+10FFFF
  EXPECT_EQ(text::utf8_lossy("\x80\xBF"), r + r);
  EXPECT_EQ(text::utf8_incomplete_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(text::utf8_incomplete_tail("a\xF0\x80"), 0u);
  EXPECT_EQ(text::utf8_incomplete_tail("\xE4\xBD\xA0"), 0u);
  EXPECT_EQ(text::utf8_incomplete_tail("\xE4\xBD\xA0\x80"), 0u);
}
