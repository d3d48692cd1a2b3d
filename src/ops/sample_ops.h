// Token selection on the compute device, so that a decode step returns only ids. Semantics per
// row, in Hugging Face's order: repetition penalty over the ids marked in `presence` -> greedy
// argmax (first index on ties), or temperature -> top-k -> top-p -> a draw. The draw is the
// Gumbel-max trick, argmax(z_i + g_i) over the kept tokens with g_i = -log(-log(u_i)), which picks
// token i with probability softmax(z)_i exactly; u_i comes from a counter-based hash of (seed,
// step, i), so a seed reproduces a run on either device and no random state lives on the host.
// The chosen id is marked in `presence` and the row's step counter advances.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "ops/sample_params.h"

namespace stepaudio::ops {

// A U8 [params.size(), 32] tensor on `device`.
Tensor make_sample_params(const std::vector<SampleParams>& params, Device device);

// logits F32 [B, V] (left unchanged); params U8 [B, 32]; presence U8 [B, V] (0/1); steps I64 [B];
// ids I32 [B] receives the choices. All on one device.
void sample_tokens(const Tensor& logits, const Tensor& params, Tensor& presence, Tensor& steps,
                   Tensor& ids);

// The same choice for one host row (the first token after a prefill, whose logits are on the
// host): logits [V] are not modified; presence [V] gets the chosen id.
int32_t sample_row_host(std::span<const float> logits, const SampleParams& params,
                        std::span<uint8_t> presence, int64_t step);

// The uniform in (0, 1) behind token i's Gumbel noise at a row's step (exposed for tests).
double sample_uniform(uint64_t seed, int64_t step, int64_t i);

}  // namespace stepaudio::ops
