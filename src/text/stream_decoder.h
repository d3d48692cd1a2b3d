// Incremental detokenizer for generation: ids arrive one at a time and text leaves as soon as it
// is complete UTF-8. A multi-byte character split across tokens (CJK, emoji) is held back until
// its last byte arrives; bytes that can no longer become valid are emitted as U+FFFD at once.
// The concatenation of every push() and finish() equals Tokenizer::decode of all the ids.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "text/tokenizer.h"

namespace stepaudio::text {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false)
      : tok_(&tok), skip_special_(skip_special_tokens) {}

  // Text completed by this id (often empty while a character is incomplete). Throws Error for an
  // id outside the vocabulary, leaving the decoder unchanged.
  std::string push(int32_t id);
  std::string push(std::span<const int32_t> ids);
  // Emits what is still held (an unfinished character becomes U+FFFD) and resets.
  std::string finish();
  // Bytes waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace stepaudio::text
