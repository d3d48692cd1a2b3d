#include <chrono>
#include <filesystem>

#include "api/engine_impl.h"
#include "core/log.h"

namespace stepaudio {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

SamplerConfig sampler_config(const Sampling& s) {
  SamplerConfig c;
  c.greedy = s.greedy || s.temperature == 0.0f;
  c.temperature = s.temperature;
  c.top_k = s.top_k;
  c.top_p = s.top_p;
  c.repetition_penalty = s.repetition_penalty;
  c.seed = s.seed;
  c.validate();
  return c;
}

StopReason stop_reason(GenStop s) {
  switch (s) {
    case GenStop::Eot:
      return StopReason::Eot;
    case GenStop::MaxTokens:
      return StopReason::MaxTokens;
    case GenStop::ContextFull:
      return StopReason::ContextFull;
  }
  return StopReason::Eot;
}
}  // namespace

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::~Engine() = default;

Engine Engine::load(const std::string& dir, const EngineOptions& options) {
  namespace fs = std::filesystem;
  const auto t0 = Clock::now();
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail("model folder {} does not exist", dir);
  if (!fs::is_directory(dir, ec))
    fail(
        "model folder {} is not a directory (expected config.json, the safetensors shards and "
        "the tokenizer files inside)",
        dir);
  if (options.max_context < 0)
    fail("engine options: max_context must be >= 0 (0 = the model's limit), found {}",
         options.max_context);
  if (options.device.is_cuda() && !cuda_available())
    fail("device {} requested, but {}", options.device.str(),
#if defined(STEPAUDIO_CUDA)
         "no usable CUDA GPU was found"
#else
         "this build has no CUDA backend (rebuild with -DSTEPAUDIO_CUDA=ON)"
#endif
    );
  Checkpoint ckpt = Checkpoint::open(dir, options.show_progress);
  text::Tokenizer tok = text::Tokenizer::load(dir);
  if (tok.vocab_size() > ckpt.config().text.vocab_size)
    fail("model folder {}: the tokenizer has {} ids but the model's vocab_size is {}", dir,
         tok.vocab_size(), ckpt.config().text.vocab_size);
  auto impl = std::make_unique<Impl>(std::move(ckpt), std::move(tok), options);
  impl->load_s = since(t0);
  log::debug("engine: loaded {} on {} in {:.2f} s", dir, options.device.str(), impl->load_s);
  return Engine(std::move(impl));
}

Device Engine::device() const { return impl_->options.device; }
double Engine::load_seconds() const { return impl_->load_s; }

std::vector<int32_t> Engine::prompt_ids(const Conversation& conversation) {
  return impl_->prompt(conversation).ids;
}

Result Engine::generate(const Conversation& conversation, const Sampling& sampling,
                        const DeltaCallback& on_delta) {
  const auto t0 = Clock::now();
  GenerationConfig gc;
  gc.sampler = sampler_config(sampling);
  if (sampling.max_tokens < 1)
    fail("sampling: max_tokens must be >= 1, found {}", sampling.max_tokens);
  gc.max_new_tokens = sampling.max_tokens;
  gc.max_context = impl_->options.max_context;

  Prompt prompt = impl_->prompt(conversation);
  std::vector<Tensor> mels;
  for (auto& c : prompt.chunks) mels.push_back(c.mel);
  const double prompt_s = since(t0);

  OutputSplitter split(impl_->tok, gc.stop_ids);
  Generation g = impl_->gen.run(prompt.ids, mels, gc, [&](int32_t id) {
    OutputSplitter::Piece piece = split.push(id);
    if (!on_delta) return;
    Delta d;
    d.text = std::move(piece.text);
    d.audio_codes = std::move(piece.audio_codes);
    d.token = id;
    on_delta(d);
  });
  const std::string tail = split.flush();
  if (on_delta) {
    Delta d;
    d.text = tail;
    d.done = true;
    on_delta(d);
  }

  Result r;
  r.text = impl_->tok.decode(split.text_ids());
  r.audio_codes = split.audio_codes();
  r.tokens = std::move(g.tokens);
  r.prompt = std::move(prompt.ids);
  r.stop = stop_reason(g.stop);
  Timings& t = r.timings;
  t.load_s = impl_->load_s;
  t.audio_s = prompt.audio_s;
  t.mel_s = prompt.mel_s;
  t.encoder_s = g.stats.encoder_s;
  t.prefill_s = g.stats.prefill_s;
  t.decode_s = g.stats.decode_s;
  t.first_token_s = prompt_s + g.stats.first_token_s;
  t.prompt_tokens = g.stats.prompt_tokens;
  t.generated_tokens = g.stats.generated_tokens;
  t.total_s = since(t0);
  return r;
}

}  // namespace stepaudio
