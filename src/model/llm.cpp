#include "model/llm.h"

#include <cmath>

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
    // Matrices in the compute type, vectors as F32; a tensor already in its type is copied as is.
    auto matrix = [&](Tensor& t) {
      t = (t.dtype() == cuda_weights ? t : t.to_dtype(cuda_weights)).to(device);
    };
    auto vec = [&](Tensor& t) { t = t.to(device); };
    vec(final_norm_);
    matrix(lm_head_);
    for (Layer& l : layers_) {
      for (Tensor* t : {&l.q_w, &l.k_w, &l.v_w, &l.o_w, &l.gate_w, &l.up_w, &l.down_w}) matrix(*t);
      for (Tensor* t : {&l.in_norm, &l.q_b, &l.k_b, &l.v_b, &l.post_norm}) vec(*t);
    }
  }
}

Tensor Qwen2LM::embed(std::span<const int32_t> ids) const {
  return ops::embedding(embed_tokens_, ids);
}

Tensor Qwen2LM::forward(const Tensor& embeds, KVCache& cache, bool all_logits,
                        std::vector<Tensor>* layer_outputs) const {
  const int64_t Hd = cfg_.hidden_size, H = cfg_.num_attention_heads;
  const int64_t Hkv = cfg_.num_key_value_heads, D = cfg_.head_dim();
  if (!embeds.defined() || embeds.dtype() != DType::F32 || embeds.ndim() != 2 ||
      embeds.dim(1) != Hd || embeds.dim(0) < 1)
    fail("Qwen2LM::forward: expected F32 embeddings [L >= 1, {}], got {}", Hd,
         embeds.defined() ? embeds.desc() : "nothing");
  if (cache.device() != device_)
    fail("Qwen2LM::forward: the KV cache is on {} but the model on {}", cache.device().str(),
         device_.str());
  if (cache.num_layers() != static_cast<int64_t>(layers_.size()) || cache.k(0).dim(1) != Hkv ||
      cache.k(0).dim(2) != D)
    fail(
        "Qwen2LM::forward: the KV cache was made for another model ({} layers of [{}, {}]); "
        "this one needs {} layers of [{}, {}]",
        cache.num_layers(), cache.k(0).dim(1), cache.k(0).dim(2), layers_.size(), Hkv, D);
  const int64_t L = embeds.dim(0), pos = cache.length();
  if (pos + L > cache.max_len())
    fail("Qwen2LM::forward: {} new positions after {} exceed the KV cache's {} positions", L, pos,
         cache.max_len());
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  ops::AttentionOptions opt;
  opt.scale = 1.0f / std::sqrt(static_cast<float>(D));
  opt.causal = true;
  opt.q_offset = pos;
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
    cache.write(li, pos, k, v);
    Tensor keys = cache.k(li).slice_rows(0, pos + L).reshape({1, pos + L, Hkv, D});
    Tensor vals = cache.v(li).slice_rows(0, pos + L).reshape({1, pos + L, Hkv, D});
    Tensor a = ops::attention(q.reshape({1, L, H, D}), keys, vals, opt).reshape({L, H * D});
    ops::add_(x, ops::linear(a, l.o_w));

    h = ops::rms_norm(x, l.post_norm, eps);
    Tensor m = ops::silu_mul(ops::linear(h, l.gate_w), ops::linear(h, l.up_w));
    ops::add_(x, ops::linear(m, l.down_w));
    if (layer_outputs) layer_outputs->push_back(x.clone());
  }
  Tensor h = ops::rms_norm(x, final_norm_, eps);
  if (layer_outputs) layer_outputs->push_back(h.clone());
  cache.set_length(pos + L);
  return ops::linear(all_logits ? h : h.slice_rows(L - 1, L), lm_head_).to(Device::cpu());
}

}  // namespace stepaudio
