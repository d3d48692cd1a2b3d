// Fuzzes the tokenizer with arbitrary bytes: the first byte picks the mode.
//   even: encode the rest as text (valid or not). Invalid UTF-8 must give Error, never a crash;
//         text without '<' (so without added tokens) must decode back to its NFC form.
//   odd:  decode the rest as little-endian int32 ids (any value). Ids outside the vocabulary
//         must give Error; otherwise the output is valid UTF-8 and streaming decode agrees.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace {

namespace fs = std::filesystem;

const stepaudio::text::Tokenizer& tokenizer() {
  static const auto t = [] {
    // The repository's bundled copy; the shared folder's official files as a fallback.
    fs::path dir = fs::path(__FILE__).parent_path().parent_path() / "assets" / "tokenizer";
    if (!fs::exists(dir / "vocab.json")) dir = fs::path(STEPAUDIO_SHARED_DIR) / "stepaudio2-mini";
    return stepaudio::text::Tokenizer::load(dir);
  }();
  return t;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stepaudio;
  const auto& tok = tokenizer();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  if (mode % 2 == 0) {
    const std::string s(reinterpret_cast<const char*>(data), size);
    const bool valid = text::utf8_valid(s);
    std::vector<int32_t> ids;
    try {
      ids = tok.encode(s);
    } catch (const Error&) {
      check(!valid, "valid UTF-8 was rejected");
      return 0;
    }
    check(valid, "invalid UTF-8 was accepted");
    for (int32_t id : ids) check(tok.is_valid_id(id), "encode produced an unknown id");
    const std::string back = tok.decode(ids);
    check(text::utf8_valid(back), "decode produced invalid UTF-8");
    if (s.find('<') == std::string::npos)
      check(back == text::nfc_normalize(s), "decode(encode(s)) != NFC(s)");
  } else {
    std::vector<int32_t> ids(size / 4);
    if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
    bool all_known = true;
    for (int32_t id : ids) all_known = all_known && tok.is_valid_id(id);
    std::string full;
    try {
      full = tok.decode(ids);
    } catch (const Error&) {
      check(!all_known, "decode rejected known ids");
      return 0;
    }
    check(all_known, "decode accepted an unknown id");
    check(text::utf8_valid(full), "decode produced invalid UTF-8");
    text::StreamDecoder d(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = d.push(id);
      check(text::utf8_valid(piece), "stream piece is not valid UTF-8");
      streamed += piece;
    }
    streamed += d.finish();
    check(streamed == full, "streamed decode differs from decode");
  }
  return 0;
}
