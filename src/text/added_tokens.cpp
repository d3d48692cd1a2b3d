#include "text/added_tokens.h"

#include <cstring>

#include <utf8proc.h>

#include "text/utf8.h"

namespace stepaudio::text {

bool is_unicode_space(uint32_t cp) {
  // The White_Space property.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_word_char(uint32_t cp) {
  // \w: letters, marks, decimal digits, connector punctuation, and the joiners.
  if (cp == 0x200C || cp == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

namespace {
// Last / first code point of valid UTF-8 text (0 when empty, never a word or space character).
uint32_t last_cp(std::string_view s) {
  if (s.empty()) return 0;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return utf8_decode_at(s, i, s.size() - i);
}
uint32_t first_cp(std::string_view s) {
  if (s.empty()) return 0;
  const size_t n = utf8_sequence(s, 0);
  return n ? utf8_decode_at(s, 0, n) : 0;
}
}  // namespace

void TokenTrie::add(std::string_view s, int32_t token_index) {
  if (s.empty()) return;
  int32_t node = 0;
  for (char ch : s) {
    const auto c = static_cast<uint8_t>(ch);
    int32_t next = child(node, c);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{});
      edges_.emplace((static_cast<uint64_t>(node) << 8) | c, next);
    }
    node = next;
  }
  // The first token with a given string wins, as in the HF added vocabulary.
  if (nodes_[node].token < 0) nodes_[node].token = token_index;
  const auto first = static_cast<uint8_t>(s[0]);
  if (!first_byte_[first]) single_first_ = (single_first_ == -1 && !any_first_) ? first : -2;
  first_byte_[first] = true;
  any_first_ = true;
}

std::vector<AddedMatch> TokenTrie::find(std::string_view text,
                                        const std::vector<AddedToken>& tokens) const {
  std::vector<AddedMatch> out;
  if (empty()) return out;
  size_t floor = 0;  // bytes already claimed by a previous match (including stripped spaces)
  size_t i = 0;
  while (i < text.size()) {
    if (single_first_ >= 0) {
      // Usually every token starts with '<': jump there with memchr.
      const void* p = std::memchr(text.data() + i, single_first_, text.size() - i);
      if (!p) break;
      i = static_cast<size_t>(static_cast<const char*>(p) - text.data());
    } else if (!first_byte_[static_cast<uint8_t>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      node = child(node, static_cast<uint8_t>(text[k]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = k + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens[best];
    size_t b = i, e = best_end;
    i = best_end;  // the scan resumes after the match whether or not it is kept
    if (b < floor) continue;
    if (t.single_word) {
      const bool space_before = b == 0 || !is_word_char(last_cp(text.substr(0, b)));
      const bool space_after = e == text.size() || !is_word_char(first_cp(text.substr(e)));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) {
      while (b > floor) {
        size_t p = b - 1;
        while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        if (!is_unicode_space(utf8_decode_at(text, p, b - p))) break;
        b = p;
      }
      if (b < floor) b = floor;
    }
    if (t.rstrip) {
      while (e < text.size()) {
        const size_t n = utf8_sequence(text, e);
        if (n == 0 || !is_unicode_space(utf8_decode_at(text, e, n))) break;
        e += n;
      }
      i = std::max(i, e);
    }
    floor = e;
    out.push_back({b, e, t.id});
  }
  return out;
}

}  // namespace stepaudio::text
