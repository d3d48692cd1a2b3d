// Internal: the parts of a loaded Tokenizer, shared by tokenizer.cpp (encode/decode) and
// tokenizer_load.cpp (the file formats).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pretokenize.h"
#include "text/tokenizer.h"

namespace stepaudio::text {

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<Bpe> bpe;
  std::unique_ptr<PreTokenizer> pre;
  bool nfc = true;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into `added`
  std::unordered_map<std::string, int32_t> added_by_content;
  TokenTrie raw_trie;         // normalized=false tokens, matched on the raw text
  TokenTrie normalized_trie;  // normalized=true tokens (NFC content), matched after NFC
  int32_t vocab_size = 0;

  // Builds the tries and indexes from `added`; throws Error naming `where` on conflicts.
  void index_added_tokens(const std::string& where);
};

// NFC via utf8proc; only runs that NFC could change are passed to it. `text` must be valid UTF-8.
std::string nfc_normalize(std::string_view text);
// True when NFC leaves `text` as it is for certain (all code points inert), so no copy is needed.
bool nfc_inert_text(std::string_view text);

}  // namespace stepaudio::text
