// A voice: everything token2wav needs about the prompt speaker, precomputed so that speaking
// needs neither the prompt wav, nor the S3 tokenizer, nor CAM++ at run time. Stored as a
// safetensors file: prompt_codes I64 [N] (25 Hz speech codes of the prompt, in [0, 6561)),
// prompt_mel F32 [2N, 80] (flow_mel_24k of the prompt after the length fix), speaker_embedding
// F32 [192] (CAM++ output).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stepaudio {

inline constexpr int64_t kSpeechCodebookSize = 6561;  // 3^8 FSQ codes
inline constexpr int64_t kSpeakerEmbeddingDim = 192;
inline constexpr int64_t kFlowMels = 80;

struct Voice {
  std::vector<int32_t> prompt_codes;
  Tensor prompt_mel;         // F32 [2N, 80]
  Tensor speaker_embedding;  // F32 [192]
};

// Throws Error naming `where` and the field when something is wrong: no codes, a code outside
// [0, 6561), a mel that is not F32 [2N, 80] or holds NaN/Inf, an embedding that is not F32 [192]
// or holds NaN/Inf.
void validate_voice(const Voice& v, const std::string& where);

// Reads and validates a voice file (I32 codes are accepted too; F16/BF16 mel and embedding are
// widened to F32). Tensors other than the three are an error, so a wrong file is not taken for a
// voice.
Voice load_voice(const std::string& path);

// Validates, then writes atomically (never a partial file).
void save_voice(const std::string& path, const Voice& v);

}  // namespace stepaudio
