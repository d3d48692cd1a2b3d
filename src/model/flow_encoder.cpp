#include "model/flow_encoder.h"

#include <cmath>

#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"

namespace stepaudio {

namespace {

constexpr float kLayerEps = 1e-12f;  // the conformer layers' LayerNorms
constexpr float kEmbedEps = 1e-5f;   // embed LayerNorm and after_norm
constexpr float kLookaheadSlope = 0.01f;
constexpr int64_t kLookaheadCtx = 2;  // conv2 of the pre-lookahead layer: kernel 3, left pad 2

Tensor f32(const Tensor& t) { return t.dtype() == DType::F32 ? t : ops::to_f32(t); }

// The trailing `n` frames of x [B, C, T].
Tensor last_frames(const Tensor& x, int64_t n) {
  return ops::slice_axis(x, 2, x.dim(2) - n, x.dim(2));
}

// t on device d (no copy when it is there already).
Tensor on(const Tensor& t, Device d) { return !t.defined() || t.device() == d ? t : t.to(d); }

void record(FlowTrace* trace, const std::string& name, const Tensor& t) {
  if (trace) trace->emplace_back(name, t);
}

}  // namespace

FlowEncoder::Embed FlowEncoder::load_embed(const WeightFn& get, const std::string& p, int64_t in,
                                           int64_t d) {
  return {expect_weight(get, p + ".out.0.weight", {d, in}),
          expect_vector_f32(get, p + ".out.0.bias", d),
          expect_vector_f32(get, p + ".out.1.weight", d),
          expect_vector_f32(get, p + ".out.1.bias", d)};
}

FlowEncoder::Layer FlowEncoder::load_layer(const WeightFn& get, const std::string& p) const {
  const int64_t D = c_.output_size, H = c_.attention_heads, U = c_.linear_units;
  const std::string a = p + ".self_attn.";
  Layer l;
  l.ln_mha_w = expect_vector_f32(get, p + ".norm_mha.weight", D);
  l.ln_mha_b = expect_vector_f32(get, p + ".norm_mha.bias", D);
  l.q_w = expect_weight(get, a + "linear_q.weight", {D, D});
  l.q_b = expect_vector_f32(get, a + "linear_q.bias", D);
  l.k_w = expect_weight(get, a + "linear_k.weight", {D, D});
  l.k_b = expect_vector_f32(get, a + "linear_k.bias", D);
  l.v_w = expect_weight(get, a + "linear_v.weight", {D, D});
  l.v_b = expect_vector_f32(get, a + "linear_v.bias", D);
  l.out_w = expect_weight(get, a + "linear_out.weight", {D, D});
  l.out_b = expect_vector_f32(get, a + "linear_out.bias", D);
  l.pos_w = expect_weight(get, a + "linear_pos.weight", {D, D});
  l.pos_u = f32(expect_weight(get, a + "pos_bias_u", {H, D / H}));
  l.pos_v = f32(expect_weight(get, a + "pos_bias_v", {H, D / H}));
  l.ln_ff_w = expect_vector_f32(get, p + ".norm_ff.weight", D);
  l.ln_ff_b = expect_vector_f32(get, p + ".norm_ff.bias", D);
  l.w1 = expect_weight(get, p + ".feed_forward.w_1.weight", {U, D});
  l.b1 = expect_vector_f32(get, p + ".feed_forward.w_1.bias", U);
  l.w2 = expect_weight(get, p + ".feed_forward.w_2.weight", {D, U});
  l.b2 = expect_vector_f32(get, p + ".feed_forward.w_2.bias", D);
  return l;
}

FlowEncoder::FlowEncoder(const FlowEncoderConfig& c, const WeightFn& get) : c_(c) {
  const int64_t D = c.output_size;
  embed_ = load_embed(get, "encoder.embed", c.input_size, D);
  up_embed_ = load_embed(get, "encoder.up_embed", c.input_size, D);
  look1_w_ = expect_weight(get, "encoder.pre_lookahead_layer.conv1.weight",
                           {D, D, c.pre_lookahead_len + 1});
  look1_b_ = expect_vector_f32(get, "encoder.pre_lookahead_layer.conv1.bias", D);
  look2_w_ =
      expect_weight(get, "encoder.pre_lookahead_layer.conv2.weight", {D, D, kLookaheadCtx + 1});
  look2_b_ = expect_vector_f32(get, "encoder.pre_lookahead_layer.conv2.bias", D);
  up_w_ = expect_weight(get, "encoder.up_layer.conv.weight", {D, D, 2 * c.up_stride + 1});
  up_b_ = expect_vector_f32(get, "encoder.up_layer.conv.bias", D);
  norm_w_ = expect_vector_f32(get, "encoder.after_norm.weight", D);
  norm_b_ = expect_vector_f32(get, "encoder.after_norm.bias", D);
  for (int64_t i = 0; i < c.num_blocks; ++i)
    layers_.push_back(load_layer(get, fmt::format("encoder.encoders.{}", i)));
  for (int64_t i = 0; i < c.num_up_blocks; ++i)
    up_layers_.push_back(load_layer(get, fmt::format("encoder.up_encoders.{}", i)));
}

void FlowEncoder::to(Device d) {
  for (Embed* e : {&embed_, &up_embed_})
    for (Tensor* t : {&e->w, &e->b, &e->ln_w, &e->ln_b}) *t = on(*t, d);
  for (Tensor* t : {&look1_w_, &look1_b_, &look2_w_, &look2_b_, &up_w_, &up_b_, &norm_w_, &norm_b_})
    *t = on(*t, d);
  for (auto* stack : {&layers_, &up_layers_})
    for (Layer& l : *stack)
      for (Tensor* t : {&l.ln_mha_w, &l.ln_mha_b, &l.q_w, &l.q_b, &l.k_w, &l.k_b, &l.v_w, &l.v_b,
                        &l.out_w, &l.out_b, &l.pos_w, &l.pos_u, &l.pos_v, &l.ln_ff_w, &l.ln_ff_b,
                        &l.w1, &l.b1, &l.w2, &l.b2})
        *t = on(*t, d);
}

Tensor FlowEncoder::embed(const Tensor& x, bool up) const {
  const Embed& e = up ? up_embed_ : embed_;
  Tensor h = ops::layer_norm(ops::linear(on(x, e.w.device()), e.w, e.b), e.ln_w, e.ln_b, kEmbedEps);
  ops::scale_(h, static_cast<float>(std::sqrt(static_cast<double>(c_.output_size))));
  return h;
}

Tensor FlowEncoder::pos_table(int64_t size) const {
  return ops::rel_pos_table(size, c_.output_size);
}

Tensor FlowEncoder::pre_lookahead(const Tensor& x_in) const {
  const Tensor x = on(x_in, device());
  Tensor h = ops::conv1d_ex(ops::transpose_last2(x), look1_w_, look1_b_,
                            {.pad_right = c_.pre_lookahead_len});
  ops::leaky_relu_(h, kLookaheadSlope);
  h = ops::transpose_last2(ops::conv1d_ex(h, look2_w_, look2_b_, {.pad_left = kLookaheadCtx}));
  ops::add_(h, x);
  return h;
}

Tensor FlowEncoder::layer(int64_t i, bool up, const Tensor& x_in, const Tensor& pos_in,
                          Tensor* k_cache, Tensor* v_cache) const {
  const Layer& l = (up ? up_layers_ : layers_).at(static_cast<size_t>(i));
  const Tensor x = on(x_in, l.q_w.device()), pos = on(pos_in, l.q_w.device());
  const int64_t B = x.dim(0), T = x.dim(1), D = c_.output_size, H = c_.attention_heads;
  Tensor h = ops::layer_norm(x, l.ln_mha_w, l.ln_mha_b, kLayerEps);
  Tensor q = ops::linear(h, l.q_w, l.q_b).reshape({B, T, H, D / H});
  Tensor k = ops::linear(h, l.k_w, l.k_b).reshape({B, T, H, D / H});
  Tensor v = ops::linear(h, l.v_w, l.v_b).reshape({B, T, H, D / H});
  if (k_cache && v_cache) {
    if (k_cache->defined()) {
      k = ops::concat_axis({*k_cache, k}, 1);
      v = ops::concat_axis({*v_cache, v}, 1);
    }
    *k_cache = k;
    *v_cache = v;
  }
  Tensor p = ops::linear(pos, l.pos_w).reshape({pos.dim(0), H, D / H});
  Tensor a = ops::rel_pos_attention(q, k, v, p, l.pos_u, l.pos_v).reshape({B, T, D});
  Tensor y = ops::add(x, ops::linear(a, l.out_w, l.out_b));
  Tensor f = ops::linear(ops::layer_norm(y, l.ln_ff_w, l.ln_ff_b, kLayerEps), l.w1, l.b1);
  ops::silu_(f);
  ops::add_(y, ops::linear(f, l.w2, l.b2));
  return y;
}

Tensor FlowEncoder::upsample(const Tensor& x) const {
  Tensor u = ops::upsample_nearest_time(ops::transpose_last2(on(x, device())), c_.up_stride);
  return ops::conv1d_ex(u, up_w_, up_b_, {.pad_left = 2 * c_.up_stride});
}

Tensor FlowEncoder::final_norm(const Tensor& x) const {
  return ops::layer_norm(on(x, device()), norm_w_, norm_b_, kEmbedEps);
}

Tensor FlowEncoder::forward(const Tensor& x, FlowTrace* trace) const {
  if (x.ndim() != 3 || x.dim(0) != 1 || x.dim(2) != c_.input_size || x.dim(1) < 1)
    fail("flow encoder: expected input [1, T, {}] with T >= 1, got {}", c_.input_size, x.desc());
  const int64_t T = x.dim(1);
  Tensor h = embed(x, false);
  Tensor pos = on(pos_table(T), device());
  record(trace, "flow/enc_embed", h.reshape({T, c_.output_size}));
  record(trace, "flow/enc_pos_emb", pos);
  h = pre_lookahead(h);
  record(trace, "flow/enc_lookahead", h.reshape({T, c_.output_size}));
  for (int64_t i = 0; i < c_.num_blocks; ++i) {
    h = layer(i, false, h, pos);
    record(trace, fmt::format("flow/enc_block{}", i), h.reshape({T, c_.output_size}));
  }
  Tensor u = upsample(h);
  const int64_t T2 = u.dim(2);
  record(trace, "flow/enc_up", u.reshape({c_.output_size, T2}));
  h = embed(ops::transpose_last2(u), true);
  pos = on(pos_table(T2), device());
  record(trace, "flow/enc_up_embed", h.reshape({T2, c_.output_size}));
  record(trace, "flow/enc_up_pos_emb", pos);
  for (int64_t i = 0; i < c_.num_up_blocks; ++i) {
    h = layer(i, true, h, pos);
    record(trace, fmt::format("flow/up_block{}", i), h.reshape({T2, c_.output_size}));
  }
  h = final_norm(h);
  record(trace, "flow/encoder_out", h.reshape({T2, c_.output_size}));
  return h;
}

Tensor FlowEncoder::forward_chunk(const Tensor& x, bool last_chunk, FlowEncoderCache& cache) const {
  const int64_t D = c_.output_size, L = c_.pre_lookahead_len, S = c_.up_stride;
  if (x.ndim() != 3 || x.dim(0) != 1 || x.dim(2) != c_.input_size)
    fail("flow encoder chunk: expected input [1, T, {}], got {}", c_.input_size, x.desc());
  const size_t n_layers = layers_.size() + up_layers_.size();
  if (!cache.k.empty() && cache.k.size() != n_layers)
    fail("flow encoder chunk: the cache holds {} layers, the encoder has {}", cache.k.size(),
         n_layers);
  if (cache.k.empty()) {
    cache.k.assign(n_layers, Tensor());
    cache.v.assign(n_layers, Tensor());
    cache.lookahead_ctx = Tensor::zeros({1, D, kLookaheadCtx}, DType::F32, device());
    cache.up_ctx = Tensor::zeros({1, D, 2 * S}, DType::F32, device());
  }
  const int64_t offset = cache.frames();

  Tensor h = embed(x, false);
  if (last_chunk) h = ops::concat_axis({h, Tensor::zeros({1, L, D}, DType::F32, h.device())}, 1);
  if (h.dim(1) <= L)
    fail("flow encoder chunk: {} frames do not cover the {} look-ahead frames", h.dim(1), L);
  const int64_t T = h.dim(1) - L;

  // Pre-lookahead: conv1 reads the look-ahead frames that are part of the input; conv2's left
  // context comes from the previous chunk.
  Tensor c1 = ops::conv1d_ex(ops::transpose_last2(h), look1_w_, look1_b_, {});
  ops::leaky_relu_(c1, kLookaheadSlope);
  c1 = ops::concat_axis({cache.lookahead_ctx, c1}, 2);
  cache.lookahead_ctx = last_frames(c1, kLookaheadCtx);
  Tensor y = ops::transpose_last2(ops::conv1d_ex(c1, look2_w_, look2_b_, {}));
  ops::add_(y, ops::slice_axis(h, 1, 0, T));

  Tensor pos = on(pos_table(offset + T), device());
  for (size_t i = 0; i < layers_.size(); ++i)
    y = layer(static_cast<int64_t>(i), false, y, pos, &cache.k[i], &cache.v[i]);

  Tensor u = ops::upsample_nearest_time(ops::transpose_last2(y), S);
  u = ops::concat_axis({cache.up_ctx, u}, 2);
  cache.up_ctx = last_frames(u, 2 * S);
  u = ops::conv1d_ex(u, up_w_, up_b_, {});

  y = embed(ops::transpose_last2(u), true);
  pos = on(pos_table(S * offset + y.dim(1)), device());
  for (size_t i = 0; i < up_layers_.size(); ++i) {
    const size_t j = layers_.size() + i;
    y = layer(static_cast<int64_t>(i), true, y, pos, &cache.k[j], &cache.v[j]);
  }
  return final_norm(y);
}

}  // namespace stepaudio
