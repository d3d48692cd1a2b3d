#include "model/llm.h"

#include <cmath>

#include "ops/decode_ops.h"
#include "ops/ops.h"

namespace stepaudio {

Qwen2LM::Qwen2LM(const TextConfig& cfg, const WeightFn& get, Device device, DType cuda_weights)
    : cfg_(cfg), device_(device) {
  if (cuda_weights != DType::BF16 && cuda_weights != DType::F16 && cuda_weights != DType::F32)
    fail("Qwen2LM: CUDA weights must be BF16, F16 or F32, got {}", dtype_name(cuda_weights));
  const int64_t Hd = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
  const int64_t H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads;
  if (H < 1 || Hkv < 1 || Hd % H != 0 || H % Hkv != 0 || cfg.head_dim() % 2 != 0)
    fail(
        "Qwen2LM: unsupported attention geometry: hidden {} with {} heads and {} KV heads "
        "(need hidden % heads == 0, heads % kv_heads == 0, even head_dim)",
        Hd, H, Hkv);
  const int64_t D = cfg.head_dim();
  embed_tokens_ = expect_weight(get, "model.embed_tokens.weight", {V, Hd});
  final_norm_ = expect_vector_f32(get, "model.norm.weight", Hd);
  lm_head_ = expect_weight(get, "lm_head.weight", {V, Hd});
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    Layer l;
    l.in_norm = expect_vector_f32(get, p + "input_layernorm.weight", Hd);
    l.q_w = expect_weight(get, p + "self_attn.q_proj.weight", {H * D, Hd});
    l.q_b = expect_vector_f32(get, p + "self_attn.q_proj.bias", H * D);
    l.k_w = expect_weight(get, p + "self_attn.k_proj.weight", {Hkv * D, Hd});
    l.k_b = expect_vector_f32(get, p + "self_attn.k_proj.bias", Hkv * D);
    l.v_w = expect_weight(get, p + "self_attn.v_proj.weight", {Hkv * D, Hd});
    l.v_b = expect_vector_f32(get, p + "self_attn.v_proj.bias", Hkv * D);
    l.o_w = expect_weight(get, p + "self_attn.o_proj.weight", {Hd, H * D});
    l.post_norm = expect_vector_f32(get, p + "post_attention_layernorm.weight", Hd);
    l.gate_w = expect_weight(get, p + "mlp.gate_proj.weight", {I, Hd});
    l.up_w = expect_weight(get, p + "mlp.up_proj.weight", {I, Hd});
    l.down_w = expect_weight(get, p + "mlp.down_proj.weight", {Hd, I});
    layers_.push_back(std::move(l));
  }
  if (device.is_cuda()) {
    kv_dtype_ = cuda_weights == DType::F32 ? DType::F32 : DType::BF16;
    // Matrices in the compute type, vectors as F32; a tensor already in its type is copied as is.
    auto host = [&](const Tensor& t) {
      return t.dtype() == cuda_weights ? t : t.to_dtype(cuda_weights);
    };
    auto matrix = [&](Tensor& t) { t = host(t).to(device); };
    auto vec = [&](Tensor& t) { t = t.to(device); };
    vec(final_norm_);
    matrix(lm_head_);
    matrix(embed_tokens_);
    const int64_t q_rows = H * D, kv_rows = Hkv * D;
    for (Layer& l : layers_) {
      l.qkv_w = concat_rows({host(l.q_w), host(l.k_w), host(l.v_w)}).to(device);
      l.qkv_b = concat_rows({l.q_b, l.k_b, l.v_b}).to(device);
      l.gate_up_w = concat_rows({host(l.gate_w), host(l.up_w)}).to(device);
      // forward() keeps using the separate matrices: views of the fused ones.
      l.q_w = l.qkv_w.slice_rows(0, q_rows);
      l.k_w = l.qkv_w.slice_rows(q_rows, q_rows + kv_rows);
      l.v_w = l.qkv_w.slice_rows(q_rows + kv_rows, q_rows + 2 * kv_rows);
      l.q_b = l.qkv_b.slice_rows(0, q_rows);
      l.k_b = l.qkv_b.slice_rows(q_rows, q_rows + kv_rows);
      l.v_b = l.qkv_b.slice_rows(q_rows + kv_rows, q_rows + 2 * kv_rows);
      l.gate_w = l.gate_up_w.slice_rows(0, I);
      l.up_w = l.gate_up_w.slice_rows(I, 2 * I);
      for (Tensor* t : {&l.o_w, &l.down_w}) matrix(*t);
      for (Tensor* t : {&l.in_norm, &l.post_norm}) vec(*t);
    }
  }
}

Tensor Qwen2LM::embed(std::span<const int32_t> ids) const {
  return ops::embedding(embed_tokens_, ids);
}

void Qwen2LM::check_cache(const KVCache& cache, const char* what) const {
  if (cache.device() != device_)
    fail("Qwen2LM::{}: the KV cache is on {} but the model on {}", what, cache.device().str(),
         device_.str());
  if (cache.num_layers() != static_cast<int64_t>(layers_.size()) ||
      cache.kv_heads() != cfg_.num_key_value_heads || cache.head_dim() != cfg_.head_dim())
    fail(
        "Qwen2LM::{}: the KV cache was made for another model ({} layers of [{}, {}]); "
        "this one needs {} layers of [{}, {}]",
        what, cache.num_layers(), cache.kv_heads(), cache.head_dim(), layers_.size(),
        cfg_.num_key_value_heads, cfg_.head_dim());
}

Tensor Qwen2LM::forward(const Tensor& embeds, KVCache& cache, bool all_logits,
                        std::vector<Tensor>* layer_outputs, int64_t slot) const {
  const int64_t Hd = cfg_.hidden_size, H = cfg_.num_attention_heads;
  const int64_t Hkv = cfg_.num_key_value_heads, D = cfg_.head_dim();
  if (!embeds.defined() || embeds.dtype() != DType::F32 || embeds.ndim() != 2 ||
      embeds.dim(1) != Hd || embeds.dim(0) < 1)
    fail("Qwen2LM::forward: expected F32 embeddings [L >= 1, {}], got {}", Hd,
         embeds.defined() ? embeds.desc() : "nothing");
  check_cache(cache, "forward");
  const int64_t L = embeds.dim(0), pos = cache.length(slot);
  if (pos + L > cache.max_len())
    fail("Qwen2LM::forward: {} new positions after {} exceed the KV cache's {} positions", L, pos,
         cache.max_len());
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  ops::AttentionOptions opt;
  opt.scale = 1.0f / std::sqrt(static_cast<float>(D));
  opt.causal = true;
  opt.q_offset = pos;
  // 16-bit weights on the GPU: the bf16 tensor-core flash attention for the prompt rows (the KV
  // cache is BF16 then too); F32 weights keep fp32 attention for golden comparisons.
  if (device_.is_cuda() && kv_dtype_ == DType::BF16) opt.compute = DType::BF16;
  if (layer_outputs) layer_outputs->clear();

  Tensor x = embeds.to(device_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const auto li = static_cast<int64_t>(i);
    Tensor h = ops::rms_norm(x, l.in_norm, eps);
    Tensor q = ops::linear(h, l.q_w, l.q_b).reshape({L, H, D});
    Tensor k = ops::linear(h, l.k_w, l.k_b).reshape({L, Hkv, D});
    Tensor v = ops::linear(h, l.v_w, l.v_b).reshape({L, Hkv, D});
    ops::rope_(q, pos, cfg_.rope_theta);
    ops::rope_(k, pos, cfg_.rope_theta);
    cache.write(li, pos, k, v, slot);
    Tensor keys = cache.keys(li, slot, pos + L).reshape({1, pos + L, Hkv, D});
    Tensor vals = cache.values(li, slot, pos + L).reshape({1, pos + L, Hkv, D});
    Tensor a = ops::attention(q.reshape({1, L, H, D}), keys, vals, opt).reshape({L, H * D});
    ops::add_(x, ops::linear(a, l.o_w));

    h = ops::rms_norm(x, l.post_norm, eps);
    Tensor m = ops::silu_mul(ops::linear(h, l.gate_w), ops::linear(h, l.up_w));
    ops::add_(x, ops::linear(m, l.down_w));
    if (layer_outputs) layer_outputs->push_back(x.clone());
  }
  Tensor h = ops::rms_norm(x, final_norm_, eps);
  if (layer_outputs) layer_outputs->push_back(h.clone());
  cache.set_length(pos + L, slot);
  return ops::linear(all_logits ? h : h.slice_rows(L - 1, L), lm_head_).to(Device::cpu());
}

Tensor Qwen2LM::decode_step(const Tensor& ids, const Tensor& positions, const Tensor& slots,
                            KVCache& cache) const {
  check_cache(cache, "decode_step");
  if (!ids.defined() || ids.dtype() != DType::I32 || ids.ndim() != 1 || ids.numel() < 1 ||
      ids.device() != device_)
    fail("Qwen2LM::decode_step: expected I32 ids [B >= 1] on {}, got {}", device_.str(),
         ids.defined() ? ids.desc() : "nothing");
  const int64_t H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads;
  const int64_t D = cfg_.head_dim();
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Tensor x = ops::embedding_rows(embed_tokens_, ids);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const auto li = static_cast<int64_t>(i);
    // Where q|k|v and gate|up are fused (GPU), each norm runs inside its product; the CPU layers
    // keep separate matrices: one norm, then the products side by side.
    Tensor qkv;
    if (l.qkv_w.defined()) {
      qkv = ops::rms_norm_linear(x, l.in_norm, eps, l.qkv_w, l.qkv_b);
    } else {
      const Tensor h = ops::rms_norm(x, l.in_norm, eps);
      qkv = ops::concat_cols({ops::linear(h, l.q_w, l.q_b), ops::linear(h, l.k_w, l.k_b),
                              ops::linear(h, l.v_w, l.v_b)});
    }
    Tensor q = ops::qkv_rope_append(qkv, H, Hkv, positions, slots, cache.k(li), cache.v(li),
                                    cfg_.rope_theta);
    Tensor a = ops::decode_attention(q, cache.k(li), cache.v(li), slots, positions, scale);
    ops::linear_add_(x, a, l.o_w);
    Tensor gu;
    if (l.gate_up_w.defined()) {
      gu = ops::rms_norm_linear(x, l.post_norm, eps, l.gate_up_w);
    } else {
      const Tensor h = ops::rms_norm(x, l.post_norm, eps);
      gu = ops::concat_cols({ops::linear(h, l.gate_w), ops::linear(h, l.up_w)});
    }
    ops::swiglu_linear_add_(x, gu, l.down_w);
  }
  return ops::rms_norm_linear(x, final_norm_, eps, lm_head_);
}

}  // namespace stepaudio
