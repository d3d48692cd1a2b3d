// The Step-Audio 2 decoder: a stock Qwen2 (spec §5.2) with an untied lm_head.
//
//   x = embeds
//   per layer: x += o_proj(attn(rope(q(rms(x))), rope(k(rms(x))), v(rms(x))))   causal, GQA
//              x += down(silu(gate(rms(x))) * up(rms(x)))
//   logits = lm_head(rms(x))
//
// Prefill and decode are the same call: forward() runs L new rows at positions
// cache.length()...cache.length()+L-1 against everything already in the cache.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/device.h"
#include "engine/kv_cache.h"
#include "model/weights.h"

namespace stepaudio {

class Qwen2LM {
 public:
  // On a CUDA device the weights are copied to the GPU once, here: the matrices as `cuda_weights`
  // (BF16: bf16 tensor-core products, the official inference dtype; F32: full fp32 compute, for
  // comparisons with the float32 goldens), norms and biases as F32. The embedding table stays in
  // host memory (embed() gathers a few rows there).
  Qwen2LM(const Checkpoint& ckpt, Device device = Device::cpu(), DType cuda_weights = DType::BF16)
      : Qwen2LM(ckpt.config().text, weights_of(ckpt), device, cuda_weights) {}
  Qwen2LM(const TextConfig& cfg, const WeightFn& get, Device device = Device::cpu(),
          DType cuda_weights = DType::BF16);

  const TextConfig& config() const { return cfg_; }
  Device device() const { return device_; }

  // Token embeddings, F32 [ids.size(), hidden]. Ids outside the vocabulary fail.
  Tensor embed(std::span<const int32_t> ids) const;

  // Runs the rows of `embeds` (F32 [L, hidden], L >= 1, on any device) at positions
  // cache.length()...+L-1, appends their K/V to the cache (which must be on the model's device)
  // and returns host logits F32 [L, vocab] if all_logits, else [1, vocab] for the last row.
  // layer_outputs (if non-null) receives each layer's residual output [L, hidden] and, last, the
  // final-norm hidden [L, hidden] (on the model's device).
  Tensor forward(const Tensor& embeds, KVCache& cache, bool all_logits = false,
                 std::vector<Tensor>* layer_outputs = nullptr) const;

 private:
  struct Layer {
    Tensor in_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, post_norm, gate_w, up_w, down_w;
  };
  TextConfig cfg_;
  Device device_;
  Tensor embed_tokens_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
};

}  // namespace stepaudio
