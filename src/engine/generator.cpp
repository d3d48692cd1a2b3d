#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/error.h"
#include "engine/decode_runner.h"
#include "engine/kv_cache.h"
#include "model/audio_splice.h"
#include "model/encoder.h"
#include "model/llm.h"
#include "ops/sample_ops.h"
#include "text/output_split.h"

namespace stepaudio {

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The logits row as host floats; the sampler edits its copy.
std::vector<float> last_row(const Tensor& logits) {
  Tensor host = logits.device().is_cpu() ? logits : logits.to(Device::cpu());
  if (host.dtype() != DType::F32) host = host.to_dtype(DType::F32);
  const int64_t vocab = host.dim(-1);
  const float* p = host.data<float>() + (host.numel() - vocab);
  return std::vector<float>(p, p + vocab);
}
}  // namespace

Generator::Generator(const Qwen2LM& lm, const AudioEncoder* encoder) : lm_(lm), encoder_(encoder) {}

int64_t Generator::context_limit(int64_t requested) const {
  const int64_t model_max = lm_.config().max_position_embeddings;
  return requested > 0 ? std::min(requested, model_max) : model_max;
}

std::vector<Tensor> Generator::encode_audio(const std::vector<Tensor>& mels,
                                            EncoderTrace* trace) const {
  if (mels.empty()) return {};
  if (!encoder_) fail("generator: the prompt has audio but no audio encoder was loaded");
  return encoder_->encode(mels, trace);
}

Tensor Generator::embed_prompt(std::span<const int32_t> ids,
                               const std::vector<Tensor>& audio_rows) const {
  Tensor embeds = lm_.embed(ids);
  if (audio_rows.empty()) return embeds;
  return splice_audio(embeds, ids, audio_rows);
}

Generation Generator::run(std::span<const int32_t> prompt, const std::vector<Tensor>& mels,
                          const GenerationConfig& cfg,
                          const std::function<void(int32_t)>& on_token) const {
  if (prompt.empty()) fail("generator: empty prompt");
  if (cfg.max_new_tokens < 1)
    fail("generator: max_new_tokens must be >= 1, found {}", cfg.max_new_tokens);
  const int64_t vocab = lm_.config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= vocab)
      fail("generator: prompt id {} at position {} is outside the vocabulary [0, {})", prompt[i], i,
           vocab);
  const int64_t limit = context_limit(cfg.max_context);
  const int64_t L = static_cast<int64_t>(prompt.size());
  if (L >= limit)
    fail(
        "generator: the prompt has {} tokens; the context holds {} (prompt + at least one new "
        "token)",
        L, limit);
  cfg.sampler.validate();
  ops::SampleParams sp;
  sp.greedy = cfg.sampler.is_greedy() ? 1 : 0;
  sp.temperature = cfg.sampler.temperature;
  sp.top_k = cfg.sampler.top_k;
  sp.top_p = cfg.sampler.top_p;
  sp.repetition_penalty = cfg.sampler.repetition_penalty;
  sp.seed = cfg.sampler.seed;

  Generation out;
  out.stats.prompt_tokens = L;
  const auto t0 = Clock::now();
  const std::vector<Tensor> rows = encode_audio(mels, nullptr);
  const auto t1 = Clock::now();
  out.stats.encoder_s = seconds(t0, t1);

  // The cache never needs more than prompt + budget rows.
  const int64_t cache_len = std::min(limit, L + cfg.max_new_tokens);
  KVCache cache = lm_.make_cache(cache_len);
  Tensor embeds = embed_prompt(prompt, rows);
  std::vector<float> row = last_row(lm_.forward(embeds, cache));
  const auto t2 = Clock::now();
  out.stats.prefill_s = seconds(t1, t2);

  auto t_first = t2;
  // The first id from the prefill's host logits; the rest on the model's device (DecodeRunner),
  // with the same sampler and counter, so a seed gives the same ids either way.
  std::vector<uint8_t> presence(static_cast<size_t>(vocab), 0);
  for (int32_t id : prompt) presence[static_cast<size_t>(id)] = 1;
  std::unique_ptr<DecodeRunner> runner;
  auto is_stop = [&](int32_t id) {
    return std::find(cfg.stop_ids.begin(), cfg.stop_ids.end(), id) != cfg.stop_ids.end();
  };
  int32_t id = ops::sample_row_host(row, sp, presence, 0);
  for (;;) {
    out.tokens.push_back(id);
    if (out.tokens.size() == 1) {
      t_first = Clock::now();
      out.stats.first_token_s = seconds(t0, t_first);
    }
    if (on_token) on_token(id);
    if (is_stop(id)) {
      out.stop = GenStop::Eot;
      break;
    }
    if (static_cast<int64_t>(out.tokens.size()) >= cfg.max_new_tokens) {
      out.stop = GenStop::MaxTokens;
      break;
    }
    // As HF's max_length: prompt + answer never exceed the context (the last id needs no row).
    if (L + static_cast<int64_t>(out.tokens.size()) >= limit) {
      out.stop = GenStop::ContextFull;
      break;
    }
    if (!runner) {
      runner = std::make_unique<DecodeRunner>(lm_, cache, 1);
      std::vector<int32_t> seen(prompt.begin(), prompt.end());
      seen.push_back(id);
      runner->set_row(0, 0, L, id, sp, seen, 1);
    }
    id = runner->step()[0];
  }
  out.stats.generated_tokens = static_cast<int64_t>(out.tokens.size());
  out.stats.decode_s = seconds(t_first, Clock::now());
  return out;
}

OutputSplitter::OutputSplitter(const text::Tokenizer& tok, std::vector<int32_t> stop_ids)
    : decoder_(tok), stop_ids_(std::move(stop_ids)) {}

OutputSplitter::Piece OutputSplitter::push(int32_t id) {
  Piece piece;
  if (std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end()) return piece;
  // The official rule, one id at a time (the split has no state across ids).
  const int32_t one[1] = {id};
  text::SplitOutput s = text::split_output(one);
  if (!s.text_ids.empty()) {
    text_ids_.push_back(id);
    piece.text = decoder_.push(id);
  }
  audio_codes_.insert(audio_codes_.end(), s.audio_codes.begin(), s.audio_codes.end());
  piece.audio_codes = std::move(s.audio_codes);
  return piece;
}

std::string OutputSplitter::flush() { return decoder_.finish(); }

}  // namespace stepaudio
