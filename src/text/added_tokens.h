// Added tokens (the Step-Audio control tokens and <audio_0>…<audio_6655>) are cut out of the text
// before normalisation and BPE, the way the Hugging Face tokenizer does it:
//   1. tokens with normalized=false are matched in the raw text,
//   2. each remaining segment is NFC-normalised, then tokens with normalized=true (their content
//      normalised too) are matched inside it.
// Matching is leftmost-longest over all tokens of a pass; single_word, lstrip and rstrip then
// filter or widen each match.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace stepaudio::text {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A match of an added token: bytes [begin, end) of the searched text (lstrip/rstrip widen it).
struct AddedMatch {
  size_t begin, end;
  int32_t id;
};

// Leftmost-longest matcher over a fixed set of token strings (a byte trie).
class TokenTrie {
 public:
  void add(std::string_view s, int32_t token_index);
  // Non-overlapping matches scanning left to right: at each position the longest token wins.
  // `tokens` gives the flags; the returned ids are AddedToken ids.
  std::vector<AddedMatch> find(std::string_view text, const std::vector<AddedToken>& tokens) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    int32_t token = -1;  // index into the token list, or -1
  };
  int32_t child(int32_t node, uint8_t c) const {
    const auto it = edges_.find((static_cast<uint64_t>(node) << 8) | c);
    return it == edges_.end() ? -1 : it->second;
  }
  std::vector<Node> nodes_{Node{}};
  std::unordered_map<uint64_t, int32_t> edges_;
  bool first_byte_[256] = {};
  bool any_first_ = false;
  int single_first_ = -1;  // the one byte every token starts with, or < 0 (-2: several)
};

// Unicode helpers that the lstrip/rstrip/single_word rules use (Rust regex's \s and \w).
bool is_unicode_space(uint32_t cp);
bool is_word_char(uint32_t cp);

}  // namespace stepaudio::text
