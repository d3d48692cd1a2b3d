// The Step-Audio 2 (Qwen2) tokenizer: byte-level BPE plus added tokens, encoding exactly like the
// Hugging Face fast tokenizer loaded from the official files (`tokenizer(text)["input_ids"]`,
// nothing added) and decoding like `tokenizer.decode(ids)` (special tokens kept, no clean-up).
//
// encode: added tokens with normalized=false are cut out of the raw text; the rest is NFC
// normalised; added tokens with normalized=true are cut out of that; the remaining text is split
// by the Qwen2 regex and each word is BPE-encoded over its UTF-8 bytes.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/added_tokens.h"

namespace stepaudio::text {

class Tokenizer {
 public:
  // Loads from a model folder: tokenizer.json when present, else vocab.json + merges.txt with
  // the added tokens of tokenizer_config.json (added_tokens_decoder) or, failing that,
  // added_tokens.json. Throws Error naming the file and the problem.
  static Tokenizer load(const std::filesystem::path& dir);
  static Tokenizer load_tokenizer_json(const std::filesystem::path& file);
  static Tokenizer load_vocab_merges(const std::filesystem::path& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Throws Error if `text` is not valid UTF-8 (naming the byte offset).
  std::vector<int32_t> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<int32_t>& out) const;  // appends

  // Throws Error for an id outside the vocabulary. Ill-formed UTF-8 becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // The raw bytes one id stands for (possibly a fragment of a UTF-8 sequence).
  const std::string& token_bytes(int32_t id) const;

  // Token strings as the HF tokenizer spells them (byte alphabet for BPE tokens).
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;

  bool is_valid_id(int32_t id) const;
  bool is_special(int32_t id) const;
  // One past the largest id (158352 for Step-Audio 2; the model's embedding has 158720 rows).
  int32_t vocab_size() const;
  size_t num_merges() const;
  const std::vector<AddedToken>& added_tokens() const;
  // Where it was loaded from, for messages.
  const std::string& source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepaudio::text
