// UTF-8 helpers shared by the tokenizer, its decoders and the prompt code. Decoding follows the
// Unicode "maximal subpart" practice (one U+FFFD per maximal ill-formed subsequence), which is what
// Rust's String::from_utf8_lossy and Python's bytes.decode(errors="replace") do, so decoded text
// matches the Hugging Face tokenizer byte for byte.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace stepaudio::text {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if the bytes there are not a
// complete well-formed sequence. When 0, *prefix gets how many bytes form a valid but incomplete
// (or ill-formed) maximal subpart (at least 1), the number of bytes one U+FFFD stands for.
size_t utf8_sequence(std::string_view s, size_t i, size_t* prefix = nullptr);

// Offset of the first byte that is not part of a well-formed sequence; s.size() when valid.
size_t utf8_invalid_offset(std::string_view s);
inline bool utf8_valid(std::string_view s) { return utf8_invalid_offset(s) == s.size(); }

// Replaces every maximal ill-formed subsequence with U+FFFD.
std::string utf8_lossy(std::string_view s);

// Number of trailing bytes of s that are a valid but incomplete UTF-8 sequence, which more bytes
// could still complete (0..3). Decoding must wait for them.
size_t utf8_incomplete_tail(std::string_view s);

// Appends the UTF-8 encoding of a code point (< 0x110000, no surrogates).
void utf8_append(std::string& out, uint32_t cp);

// Decodes the well-formed sequence of length n at s[i] (n from utf8_sequence).
uint32_t utf8_decode_at(std::string_view s, size_t i, size_t n);

}  // namespace stepaudio::text
