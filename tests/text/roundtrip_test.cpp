// Property tests on random text: decode(encode(s)) is NFC(s), both loaders agree, and encoding is
// deterministic under the BPE cache.
#include <gtest/gtest.h>

#include <random>

#include <utf8proc.h>

#include "text/tokenizer_impl.h"
#include "text/utf8.h"
#include "tokenizer_dirs.h"

using namespace stepaudio;

namespace {

// Random valid UTF-8 mixing ASCII, whitespace, combining marks, CJK, emoji and any code point.
std::string random_text(std::mt19937& rng, bool with_added_tokens) {
  static const std::vector<uint32_t> picks = {
      ' ',    '\t',   '\n',   '\r',   0x85,   0xA0,   0x3000, 0x2028, 0x0301,  0x0308,  0x00E9,
      0x1100, 0x1161, 0x11A8, 0xAC00, 0x4F60, 0x597D, 0x3002, 0xFF01, 0x1F600, 0x1F44D, 0x1F3FD,
      0x200D, 0xFE0F, 0x0663, 0xFF11, '\'',   'S',    's',    'l',    '0'};
  static const char* tokens[] = {"<|BOT|>",     "<|EOT|>",      "<audio_12>", "<tts_start>",
                                 "<tool_call>", "<audio_6656>", "<|bot|>"};
  std::string s;
  const int n = static_cast<int>(rng() % 60);
  for (int i = 0; i < n; ++i) {
    const unsigned r = rng() % 100;
    if (r < 40) {
      s.push_back(static_cast<char>(0x20 + rng() % 0x5F));
    } else if (r < 75) {
      text::utf8_append(s, picks[rng() % picks.size()]);
    } else if (r < 95 || !with_added_tokens) {
      uint32_t cp = rng() % 0x30000;
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      text::utf8_append(s, cp);
    } else {
      s += " ";
      s += tokens[rng() % std::size(tokens)];
      s += " ";
    }
  }
  return s;
}

}  // namespace

TEST(RoundTrip, DecodeOfEncodeIsNfc) {
  const auto& tok = testing_text::vocab_merges_tokenizer();
  std::mt19937 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    const std::string s = random_text(rng, false);
    ASSERT_TRUE(text::utf8_valid(s));
    const auto ids = tok.encode(s);
    ASSERT_EQ(tok.decode(ids), text::nfc_normalize(s)) << "case " << i;
    ASSERT_EQ(tok.encode(text::nfc_normalize(s)), ids) << "NFC text must encode the same";
  }
}

TEST(RoundTrip, AddedTokensSurviveAndLoadersAgree) {
  const auto& a = testing_text::vocab_merges_tokenizer();
  const auto& b = testing_text::tokenizer_json_tokenizer();
  std::mt19937 rng(99);
  for (int i = 0; i < 1000; ++i) {
    const std::string s = random_text(rng, true);
    const auto ids = a.encode(s);
    ASSERT_EQ(b.encode(s), ids) << "case " << i;
    // Tokens sit between spaces here, so segment-wise NFC equals NFC of the whole string.
    ASSERT_EQ(a.decode(ids), text::nfc_normalize(s)) << "case " << i;
    ASSERT_EQ(a.encode(s), ids) << "second encode (cached words) differs";
  }
}

TEST(RoundTrip, LongInputs) {
  const auto& tok = testing_text::vocab_merges_tokenizer();
  // Long runs stress the merge loop and the regex (no word splits inside a run of letters).
  for (const std::string& s :
       {std::string(20000, 'a'), std::string(20000, ' '), std::string(5000, '\n') + "x", [] {
          std::string t;
          for (int i = 0; i < 5000; ++i) t += "语";
          return t;
        }()}) {
    const auto ids = tok.encode(s);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode(ids), s);
  }
}

TEST(RoundTrip, NfcFastPathEqualsUtf8procOnWholeStrings) {
  std::mt19937 rng(4242);
  const auto reference = [](const std::string& s) {
    utf8proc_uint8_t* p = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
    std::string r(reinterpret_cast<const char*>(p));
    std::free(p);
    return r;
  };
  for (int i = 0; i < 5000; ++i) {
    std::string s = random_text(rng, false);
    s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
    ASSERT_EQ(text::nfc_normalize(s), reference(s)) << "case " << i;
  }
  // Hand-picked: composition across the run boundary, Hangul jamo, kana voicing, reordering.
  for (const std::string s :
       {"e\xCC\x81", "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xE3\x81\x8B\xE3\x82\x99",
        "a\xCC\xA3\xCC\x87"
        "b",
        "\xE4\xBD\xA0"
        "e\xCC\x81\xE4\xBD\xA0",
        "\xE2\x80\x80"
        "x"})
    EXPECT_EQ(text::nfc_normalize(s), reference(s));
}
