// The generation loop: prompt ids (+ audio chunk mels) -> audio encoder + adaptor -> embeddings
// with the audio rows spliced in -> one prefill pass filling the KV cache -> one step per token
// until <|EOT|> or the token budget. Also the official split of the generated ids into text and
// audio codes, done incrementally so text can be streamed as it arrives.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "engine/sampler.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace stepaudio {

class Qwen2LM;
class AudioEncoder;
struct EncoderTrace;

enum class GenStop { Eot, MaxTokens, ContextFull };

struct GenerationConfig {
  SamplerConfig sampler;
  int64_t max_new_tokens = 2048;          // the stop token counts
  std::vector<int32_t> stop_ids{151665};  // <|EOT|>
  int64_t max_context = 0;  // prompt + answer; 0 = the model's max_position_embeddings
};

// prefill_s: embeddings + the prompt through the LLM; first_token_s: from the start of run() to
// the first id; decode_s: from the first id to the end (the steps that follow it).
struct GenerationStats {
  double encoder_s = 0, prefill_s = 0, decode_s = 0, first_token_s = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
};

struct Generation {
  std::vector<int32_t> tokens;  // generated ids, the stop token included
  GenStop stop = GenStop::Eot;
  GenerationStats stats;
};

class Generator {
 public:
  // `encoder` may be null for text-only use. The KV cache lives on the LLM's device.
  Generator(const Qwen2LM& lm, const AudioEncoder* encoder);

  // The adaptor rows for each audio chunk ([n_k, hidden]), batched as the official model does.
  std::vector<Tensor> encode_audio(const std::vector<Tensor>& mels, EncoderTrace* trace) const;

  // embed(ids) with the k-th chunk's rows written after the k-th <audio_start>.
  Tensor embed_prompt(std::span<const int32_t> ids, const std::vector<Tensor>& audio_rows) const;

  // Encodes the audio, prefills and decodes. `on_token` sees every id as soon as it is chosen
  // (the stop token included); throwing from it aborts.
  Generation run(std::span<const int32_t> prompt, const std::vector<Tensor>& mels,
                 const GenerationConfig& cfg, const std::function<void(int32_t)>& on_token) const;

  int64_t context_limit(int64_t requested) const;

 private:
  const Qwen2LM& lm_;
  const AudioEncoder* encoder_;
};

// The split of the reference code (spec §1.1, text::split_output) applied as ids arrive: text =
// ids < <audio_start> (151688), audio code = id - 151696 for ids > <tts_pad> (151695), audio pad
// 6561 and unused codes dropped; stop tokens are neither. Text goes through text::StreamDecoder:
// bytes of a UTF-8 character split across tokens are held back until it is complete, so the
// pieces concatenate to decode(text_ids).
class OutputSplitter {
 public:
  explicit OutputSplitter(const text::Tokenizer& tok, std::vector<int32_t> stop_ids = {151665});

  struct Piece {
    std::string text;
    std::vector<int32_t> audio_codes;
  };
  Piece push(int32_t id);
  // Whatever text is still held back (an incomplete UTF-8 tail becomes U+FFFD).
  std::string flush();

  const std::vector<int32_t>& text_ids() const { return text_ids_; }
  const std::vector<int32_t>& audio_codes() const { return audio_codes_; }

 private:
  text::StreamDecoder decoder_;
  std::vector<int32_t> stop_ids_;
  std::vector<int32_t> text_ids_, audio_codes_;
};

}  // namespace stepaudio
