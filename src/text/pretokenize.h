// The pre-tokenizer: a regex that cuts normalised text into words before BPE ("Split" with
// behaviour "Isolated" in tokenizer.json: every match is a word and so is any text between
// matches). PCRE2 with UTF + UCP + JIT runs the pattern; see translate_hf_regex for how the
// pattern is adapted so that it means what the Hugging Face tokenizer (Oniguruma) means by it.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace stepaudio::text {

// The Qwen2 split pattern, as written in tokenizer.json.
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Rewrites \s and \S so that PCRE2 matches Oniguruma's Unicode whitespace (tab, LF, VT, FF, CR,
// U+0085 and the Z categories); PCRE2's own \s leaves out U+0085.
std::string translate_hf_regex(std::string_view pattern);

class PreTokenizer {
 public:
  // `pattern` in Hugging Face syntax; throws Error naming `where` if PCRE2 rejects it.
  PreTokenizer(std::string_view pattern, const std::string& where);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls fn(word) for each word of `text` (valid UTF-8), in order; the words cover the text.
  void split(std::string_view text, const std::function<void(std::string_view)>& fn) const;

 private:
  struct Code;
  std::unique_ptr<Code> code_;
};

}  // namespace stepaudio::text
