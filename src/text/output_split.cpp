#include "text/output_split.h"

#include "text/special_tokens.h"

namespace stepaudio::text {

SplitOutput split_output(std::span<const int32_t> generated) {
  if (!generated.empty() && generated.back() == tok::kEot)
    generated = generated.first(generated.size() - 1);
  SplitOutput out;
  for (int32_t id : generated) {
    if (id >= 0 && id < tok::kAudioStart) {
      out.text_ids.push_back(id);
    } else if (id > tok::kTtsPad) {
      const int32_t code = id - tok::kAudio0;
      if (code < tok::kNumAudioCodes) out.audio_codes.push_back(code);
    }
  }
  return out;
}

}  // namespace stepaudio::text
