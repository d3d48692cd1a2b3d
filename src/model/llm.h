// The Step-Audio 2 decoder: a stock Qwen2 (spec §5.2) with an untied lm_head.
//
//   x = embeds
//   per layer: x += o_proj(attn(rope(q(rms(x))), rope(k(rms(x))), v(rms(x))))   causal, GQA
//              x += down(silu(gate(rms(x))) * up(rms(x)))
//   logits = lm_head(rms(x))
//
// forward() runs L new rows of one sequence at positions cache.length()...+L-1 against
// everything already in the cache (prefill, and the reference decode path). decode_step() runs
// one new token for each of B sequences, reading ids, positions and cache slots from device
// tensors, so that a CUDA graph of it can be replayed every token (engine/decode_graph.h).
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
  // (BF16: bf16 tensor-core products, the official inference dtype; F16 selectable; F32: full
  // fp32 compute, for comparisons with the float32 goldens), norms and biases as F32. On the GPU
  // q|k|v and gate|up are fused into one matrix each (one GEMV reads both); the separate
  // matrices forward() uses are views of them, so nothing is stored twice.
  Qwen2LM(const Checkpoint& ckpt, Device device = Device::cpu(), DType cuda_weights = DType::BF16)
      : Qwen2LM(ckpt.config().text, weights_of(ckpt), device, cuda_weights) {}
  Qwen2LM(const TextConfig& cfg, const WeightFn& get, Device device = Device::cpu(),
          DType cuda_weights = DType::BF16);

  const TextConfig& config() const { return cfg_; }
  Device device() const { return device_; }
  // The KV cache type that matches the compute type: BF16 for 16-bit weights on CUDA, else F32.
  DType kv_dtype() const { return kv_dtype_; }
  KVCache make_cache(int64_t max_len, int64_t slots = 1) const {
    return KVCache(cfg_, max_len, device_, kv_dtype_, slots);
  }

  // Token embeddings, F32 [ids.size(), hidden]. Ids outside the vocabulary fail.
  Tensor embed(std::span<const int32_t> ids) const;

  // Runs the rows of `embeds` (F32 [L, hidden], L >= 1, on any device) at positions
  // cache.length()...+L-1, appends their K/V to the cache (which must be on the model's device)
  // and returns host logits F32 [L, vocab] if all_logits, else [1, vocab] for the last row.
  // layer_outputs (if non-null) receives each layer's residual output [L, hidden] and, last, the
  // final-norm hidden [L, hidden] (on the model's device).
  Tensor forward(const Tensor& embeds, KVCache& cache, bool all_logits = false,
                 std::vector<Tensor>* layer_outputs = nullptr, int64_t slot = 0) const;

  // One token for each of B sequences: ids, positions (the cache length of each sequence before
  // the step) and slots are I32 [B] on the model's device. Appends each sequence's K/V at its
  // position and returns the logits F32 [B, vocab] on the device. Positions are not advanced
  // (ops::advance_positions does that), and the cache's host-side lengths are not touched.
  Tensor decode_step(const Tensor& ids, const Tensor& positions, const Tensor& slots,
                     KVCache& cache) const;

 private:
  struct Layer {
    Tensor in_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, post_norm, gate_w, up_w, down_w;
    Tensor qkv_w, qkv_b, gate_up_w;  // fused (GPU only; undefined on the CPU)
  };
  void check_cache(const KVCache& cache, const char* what) const;

  TextConfig cfg_;
  Device device_;
  DType kv_dtype_ = DType::F32;
  Tensor embed_tokens_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
};

}  // namespace stepaudio
