// GPT-2's byte <-> printable-character alphabet. Byte-level BPE vocabularies (vocab.json,
// tokenizer.json) spell every token in this alphabet so that each byte is one visible code point;
// the tokenizer converts them back to raw bytes once at load time and works on bytes afterwards.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stepaudio::text {

// Code point that stands for byte b.
uint32_t byte_to_unicode(uint8_t b);

// The raw bytes spelled by a token string in the byte alphabet, or nullopt when the string holds a
// code point outside the alphabet (or is not valid UTF-8).
std::optional<std::string> byte_level_decode(std::string_view token);

// The byte-alphabet spelling of raw bytes.
std::string byte_level_encode(std::string_view bytes);

}  // namespace stepaudio::text
