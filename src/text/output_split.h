// Splitting generated ids into text and speech (spec §1.1), as the official StepAudio2 code
// does: text ids are those below <audio_start> (151688), audio codes are id - 151696 for ids above
// <tts_pad> (151695); the control tokens 151688…151695 belong to neither. Codes >= 6561 (the
// <audio_6561> pad and the unused <audio_6562>…) are dropped, as every official caller does
// before token2wav.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace stepaudio::text {

struct SplitOutput {
  std::vector<int32_t> text_ids;
  std::vector<int32_t> audio_codes;  // 0 … 6560, 25 Hz CosyVoice2 codes
};

// `generated` are the ids after the prompt. The official code drops the last generated id
// (outputs[prompt_len:-1]), which is the stop token <|EOT|> when generation stopped on it; here a
// trailing <|EOT|> is dropped and nothing else, so an output cut by the length limit keeps its
// last token.
SplitOutput split_output(std::span<const int32_t> generated);

}  // namespace stepaudio::text
