#include "text/tokenizer.h"

#include <cstdlib>

#include <utf8proc.h>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace stepaudio::text {

namespace {

// Code points that NFC leaves alone and that never combine with a neighbour: canonical combining
// class 0, no canonical decomposition, never the second part of a composition (checked against
// Unicode 14 data for every code point in these ranges). Text made of them alone is already NFC,
// and NFC never changes anything across them, so only the runs between them go to utf8proc.
bool nfc_inert(uint32_t cp) {
  return cp < 0x300 || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
         (cp >= 0x3000 && cp <= 0x3029) || (cp >= 0x3030 && cp <= 0x3098) ||
         (cp >= 0x309B && cp <= 0x30FF) || (cp >= 0xFF01 && cp <= 0xFF5E) ||
         (cp >= 0x1F000 && cp <= 0x1FAFF);
}

std::string utf8proc_nfc(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  // An explicit length (no NULLTERM) keeps embedded NUL characters.
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) fail("NFC normalisation failed: {}", utf8proc_errmsg(n));
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

}  // namespace

bool nfc_inert_text(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_sequence(text, i);
    if (n == 0 || !nfc_inert(utf8_decode_at(text, i, n))) return false;
    i += n;
  }
  return true;
}

std::string nfc_normalize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t emitted = 0, i = 0, prev = 0;  // prev: start of the code point before i
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      prev = i++;
      continue;
    }
    size_t n = utf8_sequence(text, i);
    if (n == 0) fail("NFC normalisation: invalid UTF-8 at offset {}", i);
    if (nfc_inert(utf8_decode_at(text, i, n))) {
      prev = i;
      i += n;
      continue;
    }
    // The run starts at the starter before this code point and ends at the next inert one.
    const size_t begin = i == 0 ? 0 : prev;
    size_t end = i + n;
    while (end < text.size()) {
      const size_t m = utf8_sequence(text, end);
      if (m == 0) fail("NFC normalisation: invalid UTF-8 at offset {}", end);
      if (nfc_inert(utf8_decode_at(text, end, m))) break;
      end += m;
    }
    out.append(text.substr(emitted, begin - emitted));
    out += utf8proc_nfc(text.substr(begin, end - begin));
    emitted = end;
    prev = i = end;
  }
  out.append(text.substr(emitted));
  return out;
}

void Tokenizer::Impl::index_added_tokens(const std::string& where) {
  added_by_id.clear();
  added_by_content.clear();
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    if (t.id < 0) fail("{}: added token {:?} has negative id {}", where, t.content, t.id);
    if (t.content.empty()) fail("{}: added token {} has empty content", where, t.id);
    if (!utf8_valid(t.content)) fail("{}: added token {} is not valid UTF-8", where, t.id);
    if (!added_by_id.emplace(t.id, i).second)
      fail("{}: id {} is given to two added tokens ({:?} and {:?})", where, t.id,
           added[added_by_id[t.id]].content, t.content);
    added_by_content.emplace(t.content, t.id);
    if (t.normalized)
      normalized_trie.add(nfc ? nfc_normalize(t.content) : t.content, static_cast<int32_t>(i));
    else
      raw_trie.add(t.content, static_cast<int32_t>(i));
    vocab_size = std::max(vocab_size, t.id + 1);
  }
  vocab_size = std::max(vocab_size, bpe->max_id() + 1);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode(text, ids);
  return ids;
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  const size_t bad = utf8_invalid_offset(text);
  if (bad != text.size())
    fail("cannot tokenize: text is not valid UTF-8 (byte 0x{:02X} at offset {})",
         static_cast<unsigned char>(text[bad]), bad);
  const Impl& m = *impl_;
  const auto bpe_words = [&](std::string_view s) {
    m.pre->split(s, [&](std::string_view w) { m.bpe->encode_word(w, out); });
  };
  const auto normalized_part = [&](std::string_view raw) {
    std::string norm;
    std::string_view s = raw;
    if (m.nfc && !nfc_inert_text(raw)) {
      norm = nfc_normalize(raw);
      s = norm;
    }
    size_t at = 0;
    for (const AddedMatch& mt : m.normalized_trie.find(s, m.added)) {
      bpe_words(s.substr(at, mt.begin - at));
      out.push_back(mt.id);
      at = mt.end;
    }
    bpe_words(s.substr(at));
  };
  size_t at = 0;
  for (const AddedMatch& mt : m.raw_trie.find(text, m.added)) {
    if (mt.begin > at) normalized_part(text.substr(at, mt.begin - at));
    out.push_back(mt.id);
    at = mt.end;
  }
  if (at < text.size()) normalized_part(text.substr(at));
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  const auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  const std::string* b = impl_->bpe->token_bytes(id);
  if (!b)
    fail("token id {} is not in the vocabulary of {} (valid ids 0..{})", id, impl_->source,
         impl_->vocab_size - 1);
  return *b;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return utf8_lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  const auto bytes = byte_level_decode(token);
  if (!bytes) return std::nullopt;
  const int32_t id = impl_->bpe->token_id(*bytes);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  return byte_level_encode(token_bytes(id));
}

bool Tokenizer::is_valid_id(int32_t id) const {
  return impl_->added_by_id.count(id) || impl_->bpe->token_bytes(id) != nullptr;
}

bool Tokenizer::is_special(int32_t id) const {
  const auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
size_t Tokenizer::num_merges() const { return impl_->bpe->num_merges(); }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace stepaudio::text
