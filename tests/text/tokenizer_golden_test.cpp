// Every case of golden/tokenizer/cases.jsonl (ids and decoded text from the HF fast tokenizer),
// loaded both from vocab.json + merges.txt and from tokenizer.json.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "text/special_tokens.h"
#include "tokenizer_dirs.h"

using namespace stepaudio;
using nlohmann::json;

namespace {

struct Case {
  std::string text, decoded;
  std::vector<int32_t> ids;
};

const std::vector<Case>& golden_cases() {
  static const std::vector<Case> cases = [] {
    const auto path = testing_paths::golden() / "tokenizer" / "cases.jsonl";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("test data missing: " + path.string());
    std::vector<Case> out;
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty()) continue;
      const json j = json::parse(line);
      out.push_back({j.at("text").get<std::string>(), j.at("decoded").get<std::string>(),
                     j.at("ids").get<std::vector<int32_t>>()});
    }
    return out;
  }();
  return cases;
}

void check_all_cases(const text::Tokenizer& tok) {
  const auto& cases = golden_cases();
  ASSERT_EQ(cases.size(), 304u);
  int id_mismatch = 0, text_mismatch = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const auto ids = tok.encode(c.text);
    if (ids != c.ids) {
      ++id_mismatch;
      ADD_FAILURE() << "case " << i + 1 << " ids differ for " << json(c.text).dump()
                    << "\n  expected " << json(c.ids).dump() << "\n  got      " << json(ids).dump();
    }
    const std::string decoded = tok.decode(c.ids);
    if (decoded != c.decoded) {
      ++text_mismatch;
      ADD_FAILURE() << "case " << i + 1 << " decode differs: expected " << json(c.decoded).dump()
                    << " got " << json(decoded).dump();
    }
  }
  EXPECT_EQ(id_mismatch, 0);
  EXPECT_EQ(text_mismatch, 0);
}

}  // namespace

TEST(TokenizerGolden, VocabMergesFolderMatchesEveryCase) {
  check_all_cases(testing_text::vocab_merges_tokenizer());
}

TEST(TokenizerGolden, TokenizerJsonMatchesEveryCase) {
  check_all_cases(testing_text::tokenizer_json_tokenizer());
}

TEST(TokenizerGolden, BothFormsHaveTheSameShape) {
  const auto& a = testing_text::vocab_merges_tokenizer();
  const auto& b = testing_text::tokenizer_json_tokenizer();
  EXPECT_EQ(a.vocab_size(), 158352);
  EXPECT_EQ(b.vocab_size(), 158352);
  EXPECT_EQ(a.num_merges(), 151387u);
  EXPECT_EQ(b.num_merges(), 151387u);
  EXPECT_EQ(a.added_tokens().size(), 6709u);
  EXPECT_EQ(b.added_tokens().size(), 6709u);
  for (size_t i = 0; i < a.added_tokens().size(); ++i) {
    const auto& x = a.added_tokens()[i];
    const auto& y = b.added_tokens()[i];
    EXPECT_EQ(x.id, y.id);
    EXPECT_EQ(x.content, y.content);
    EXPECT_EQ(x.special, y.special) << x.content;
    EXPECT_EQ(x.normalized, y.normalized) << x.content;
  }
}

TEST(TokenizerGolden, KeyIdsAgreeWithTheFiles) {
  const auto& t = testing_text::vocab_merges_tokenizer();
  const std::pair<const char*, int32_t> keys[] = {
      {"<|endoftext|>", text::tok::kEndOfText},
      {"<|EOT|>", text::tok::kEot},
      {"<|BOT|>", text::tok::kBot},
      {"<audio_start>", text::tok::kAudioStart},
      {"<audio_end>", text::tok::kAudioEnd},
      {"<audio_patch>", text::tok::kAudioPatch},
      {"<tts_start>", text::tok::kTtsStart},
      {"<tts_end>", text::tok::kTtsEnd},
      {"<tts_pad>", text::tok::kTtsPad},
      {"<audio_0>", text::tok::kAudio0},
      {"<audio_6561>", text::tok::kAudio0 + text::tok::kAudioPadCode},
      {"<audio_6655>", text::tok::kAudio0 + text::tok::kNumAudioTokens - 1},
      {"<tool_call>", text::tok::kToolCallStart},
      {"</tool_call>", text::tok::kToolCallEnd}};
  for (const auto& [s, id] : keys) {
    EXPECT_EQ(t.token_to_id(s), id) << s;
    EXPECT_EQ(t.id_to_token(id), s);
  }
  EXPECT_TRUE(t.is_special(text::tok::kEot));
  EXPECT_FALSE(t.is_special(text::tok::kToolCallStart));
  EXPECT_FALSE(t.is_special(text::tok::kAudio0));
  EXPECT_EQ(t.token_to_id("Ġworld"), 1879);
  EXPECT_EQ(t.id_to_token(1879), "Ġworld");
  EXPECT_FALSE(t.token_to_id("<audio_6656>").has_value());
}
