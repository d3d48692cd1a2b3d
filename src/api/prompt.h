// Turns a Conversation into the model's input the way the official
// StepAudio2.apply_chat_template + tokenisation loop does (spec §6.2, golden README §5): a list of
// string pieces, each tokenised on its own (pieces never merge), raw id lists appended verbatim,
// and per 25 s audio chunk the block <audio_start> <audio_patch>×n <audio_end>. The audio is
// decoded, resampled and turned into log-mels here, because n depends on the mel length.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "audio/mel.h"
#include "core/tensor.h"
#include "stepaudio/engine.h"
#include "text/tokenizer.h"

namespace stepaudio {

struct PromptChunk {
  std::string source;  // file name (and chunk index) for messages
  Tensor mel;          // F32 [128, T] on the extractor's device
  int64_t num_samples = 0;
  int64_t n_audio_patch = 0;
};

struct Prompt {
  std::vector<int32_t> ids;
  std::vector<PromptChunk> chunks;  // in the order of their <audio_start> in `ids`
  double audio_s = 0, mel_s = 0;    // time spent decoding audio and computing mels
};

// Throws Error for an empty conversation, unreadable audio, audio with no samples, and token
// ids outside [0, vocab_size).
Prompt build_prompt(const Conversation& conv, const text::Tokenizer& tok, MelExtractor& mel,
                    int64_t vocab_size);

}  // namespace stepaudio
