// The streaming detokenizer never emits half a character, and what it emits adds up to decode().
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/stream_decoder.h"
#include "text/utf8.h"
#include "tokenizer_dirs.h"

using namespace stepaudio;
using Ids = std::vector<int32_t>;

namespace {
const text::Tokenizer& tok() { return testing_text::vocab_merges_tokenizer(); }

// Feeds ids one by one; every emitted piece must be valid UTF-8.
std::string stream_all(const Ids& ids, size_t* held_max = nullptr) {
  text::StreamDecoder d(tok());
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    EXPECT_TRUE(text::utf8_valid(piece)) << "id " << id;
    out += piece;
    if (held_max) *held_max = std::max(*held_max, d.pending_bytes());
  }
  out += d.finish();
  return out;
}
}  // namespace

TEST(StreamDecoder, EmojiSplitAcrossTokensIsHeldBack) {
  // 👍🏽 is 8 bytes that BPE spells with several byte-fragment tokens.
  const std::string s = "ok 👍🏽 fine 👨‍👩‍👧";
  const Ids ids = tok().encode(s);
  text::StreamDecoder d(tok());
  std::string out;
  size_t held = 0;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "replacement char emitted early";
    EXPECT_TRUE(text::utf8_valid(piece));
    held = std::max(held, d.pending_bytes());
    out += piece;
  }
  EXPECT_GT(held, 0u) << "this text should split a character across tokens";
  out += d.finish();
  EXPECT_EQ(out, s);
  EXPECT_EQ(d.pending_bytes(), 0u);
}

TEST(StreamDecoder, CjkByteTokensOneAtATime) {
  // Force single-byte tokens: each CJK character arrives in 3 pieces.
  const std::string s = "语音识别";
  Ids ids;
  for (char c : s)
    ids.push_back(tok().token_to_id(text::byte_level_encode(std::string(1, c))).value());
  text::StreamDecoder d(tok());
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(d.push(id));
  ASSERT_EQ(pieces.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(pieces[i].empty(), i % 3 != 2) << i;
  EXPECT_EQ(pieces[2], "语");
  EXPECT_EQ(pieces[11], "别");
  EXPECT_EQ(d.finish(), "");
}

TEST(StreamDecoder, BrokenSequencesMatchFullDecode) {
  // Fragments that can never complete must come out as U+FFFD exactly where decode() puts them.
  const auto byte = [](unsigned char c) {
    return tok().token_to_id(text::byte_level_encode(std::string(1, static_cast<char>(c)))).value();
  };
  const Ids ids = {byte(0xE4), byte(0xBD), 9707,       byte(0xF0), byte(0x9F), byte(0x98),
                   byte(0x80), byte(0x80), byte(0xE4), 151665,     byte(0xF0), byte(0x9F)};
  EXPECT_EQ(stream_all(ids), tok().decode(ids));
  text::StreamDecoder d(tok());
  d.push(byte(0xF0));
  EXPECT_EQ(d.pending_bytes(), 1u);
  EXPECT_EQ(d.finish(), "\xEF\xBF\xBD");  // an unfinished character at the end
}

TEST(StreamDecoder, UnknownIdThrowsAndKeepsState) {
  text::StreamDecoder d(tok());
  const int32_t e4 = tok().token_to_id(text::byte_level_encode("\xE4")).value();
  EXPECT_EQ(d.push(e4), "");
  EXPECT_THROW(d.push(200000), Error);
  EXPECT_THROW(d.push(Ids{e4, -5}), Error);
  EXPECT_EQ(d.pending_bytes(), 1u);
}

TEST(StreamDecoder, SkipSpecialTokens) {
  text::StreamDecoder d(tok(), /*skip_special_tokens=*/true);
  const Ids ids = tok().encode("<|BOT|>assistant\n你好<|EOT|>");
  EXPECT_EQ(d.push(ids) + d.finish(), "assistant\n你好");
}

TEST(StreamDecoder, RandomIdSequencesConcatenateToDecode) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> any(0, tok().vocab_size() - 1);
  std::uniform_int_distribution<int32_t> low_byte_tokens(0, 255);
  for (int round = 0; round < 300; ++round) {
    Ids ids;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) ids.push_back(rng() % 2 ? any(rng) : low_byte_tokens(rng));
    ASSERT_EQ(stream_all(ids), tok().decode(ids)) << "round " << round;
  }
}
