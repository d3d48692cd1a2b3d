// Engine::trace: one prompt through every stage, each intermediate saved under the name the
// golden files use (golden README §3), so a run on any checkpoint can be compared with the
// official code tensor by tensor.
#include <algorithm>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "api/engine_impl.h"
#include "engine/kv_cache.h"
#include "engine/sampler.h"
#include "io/safetensors.h"

namespace stepaudio {

namespace {
Tensor i64(const std::vector<int64_t>& v, Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::I64);
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}
Tensor i64_scalar1(int64_t v) { return i64({v}, {1}); }

// Host F32 copy with the given shape (squeezing a leading batch axis of 1 if there is one).
Tensor host_f32(const Tensor& t) {
  Tensor h = t.device().is_cpu() ? t.clone() : t.to(Device::cpu());
  return h.dtype() == DType::F32 ? h : h.to_dtype(DType::F32);
}

std::vector<float> row_of(const Tensor& logits) {
  Tensor h = host_f32(logits);
  const int64_t vocab = h.dim(-1);
  const float* p = h.data<float>() + (h.numel() - vocab);
  return std::vector<float>(p, p + vocab);
}

// The 5 largest values, descending; the lower id first on ties.
std::vector<int32_t> top5(const std::vector<float>& row) {
  std::vector<int32_t> idx(row.size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t k = std::min<size_t>(5, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return row[a] != row[b] ? row[a] > row[b] : a < b;
  });
  idx.resize(k);
  return idx;
}
}  // namespace

void Engine::trace(const Conversation& conversation, const TraceOptions& options,
                   const std::string& out_path) {
  if (options.greedy_steps < 1)
    fail("trace: greedy_steps must be >= 1, found {}", options.greedy_steps);
  if (out_path.empty()) fail("trace: no output path given");
  Impl& m = *impl_;
  const Prompt prompt = m.prompt(conversation);
  const int64_t L = static_cast<int64_t>(prompt.ids.size());
  const int64_t n_steps = options.greedy_steps;
  const int64_t limit = m.gen.context_limit(m.options.max_context);
  if (L + n_steps > limit)
    fail("trace: prompt ({} tokens) + {} greedy steps exceed the context of {} tokens", L, n_steps,
         limit);

  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<Tensor> mels;
  for (const auto& c : prompt.chunks) mels.push_back(c.mel);
  EncoderTrace etrace;
  const std::vector<Tensor> rows = m.gen.encode_audio(mels, &etrace);
  for (size_t k = 0; k < prompt.chunks.size(); ++k) {
    const std::string p = fmt::format("chunk{}/", k);
    const int64_t T = prompt.chunks[k].mel.dim(1);
    SA_CHECK(rows[k].dim(0) == prompt.chunks[k].n_audio_patch,
             "chunk {}: the encoder gave {} rows, the prompt has {} placeholders", k,
             rows[k].dim(0), prompt.chunks[k].n_audio_patch);
    out.emplace_back(p + "mel", host_f32(prompt.chunks[k].mel));
    out.emplace_back(p + "wav_len", i64_scalar1(audio_wav_len(T)));
    out.emplace_back(p + "encoder_out", host_f32(etrace.encoder_out.at(k)));
    out.emplace_back(p + "encoder_len", i64_scalar1(etrace.encoder_len.at(k)));
    out.emplace_back(p + "adaptor_out", host_f32(rows[k]));
    out.emplace_back(p + "n_audio_patch", i64_scalar1(prompt.chunks[k].n_audio_patch));
  }

  std::vector<int64_t> ids64(prompt.ids.begin(), prompt.ids.end());
  out.emplace_back("input_ids", i64(ids64, {L}));
  const Tensor embeds = m.gen.embed_prompt(prompt.ids, rows);
  out.emplace_back("inputs_embeds", host_f32(embeds));

  KVCache cache(m.lm.config(), L + n_steps, m.options.device);
  std::vector<Tensor> layers;
  Tensor logits = m.lm.forward(embeds, cache, false, &layers);
  const int64_t n_layers = m.lm.config().num_hidden_layers;
  SA_CHECK(static_cast<int64_t>(layers.size()) == n_layers + 1,
           "forward returned {} layer outputs for {} layers (+ the final norm)", layers.size(),
           n_layers);
  for (int64_t i = 0; i < n_layers; ++i)
    out.emplace_back(fmt::format("layer{}_out", i), host_f32(layers[i]));
  out.emplace_back("hidden", host_f32(layers.back()));
  std::vector<float> row = row_of(logits);
  out.emplace_back("last_logits", Tensor::from_vector(row, {static_cast<int64_t>(row.size())}));

  // Greedy steps exactly as the goldens were made: argmax (first index on ties), no penalty,
  // no stop token - always n_steps ids.
  std::vector<int64_t> greedy, top_ids;
  std::vector<float> top_vals;
  for (int64_t s = 0; s < n_steps; ++s) {
    if (s > 0) {
      const int32_t one[1] = {static_cast<int32_t>(greedy.back())};
      row = row_of(m.lm.forward(m.lm.embed(one), cache));
    }
    const std::vector<int32_t> best = top5(row);
    greedy.push_back(argmax(row));
    for (int32_t id : best) {
      top_ids.push_back(id);
      top_vals.push_back(row[id]);
    }
  }
  const int64_t k = static_cast<int64_t>(top_ids.size()) / n_steps;
  out.emplace_back("greedy_ids", i64(greedy, {n_steps}));
  out.emplace_back("greedy_top5_ids", i64(top_ids, {n_steps, k}));
  out.emplace_back("greedy_top5_vals", Tensor::from_vector(top_vals, {n_steps, k}));

  save_safetensors(out_path, out, {{"format", "pt"}, {"producer", "stepaudio trace"}});
}

}  // namespace stepaudio
