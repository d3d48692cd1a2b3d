#include "model/dit.h"

#include <cmath>

#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"

namespace stepaudio {

namespace {

constexpr int64_t kFreqDim = 256;     // TimestepEmbedder frequency_embedding_size
constexpr float kTimeScale = 1000.f;  // t is scaled by 1000 before the sinusoid
constexpr float kMaxPeriod = 10000.f;
constexpr float kAdaEps = 1e-6f;  // norm1/2/3/final (no affine)
constexpr float kEps = 1e-5f;     // q/k norms and the conv block's LayerNorm
constexpr int64_t kConvK = 3;     // CausalConvBlock kernel

// t on device d (no copy when it is there already).
Tensor on(const Tensor& t, Device d) { return !t.defined() || t.device() == d ? t : t.to(d); }

// CausalConv1d: left context (cached frames or zeros) then a valid convolution. x [B, C, T].
Tensor causal_conv(const Tensor& x, const Tensor& w, const Tensor& b, Tensor* ctx) {
  if (!ctx) return ops::conv1d_ex(x, w, b, {.pad_left = kConvK - 1});
  Tensor prev = ctx->defined()
                    ? *ctx
                    : Tensor::zeros({x.dim(0), x.dim(1), kConvK - 1}, DType::F32, x.device());
  Tensor xin = ops::concat_axis({prev, x}, 2);
  *ctx = ops::slice_axis(xin, 2, xin.dim(2) - (kConvK - 1), xin.dim(2));
  return ops::conv1d_ex(xin, w, b, {});
}

}  // namespace

DiT::DiT(const DiTConfig& c, const WeightFn& get) : c_(c) {
  const std::string p = "decoder.estimator.";
  const int64_t C = c.hidden_size, I = c.num_heads * c.head_dim, M = c.mlp_hidden;
  t1_w_ = expect_weight(get, p + "t_embedder.mlp.0.weight", {C, kFreqDim});
  t1_b_ = expect_vector_f32(get, p + "t_embedder.mlp.0.bias", C);
  t2_w_ = expect_weight(get, p + "t_embedder.mlp.2.weight", {C, C});
  t2_b_ = expect_vector_f32(get, p + "t_embedder.mlp.2.bias", C);
  in_w_ = expect_weight(get, p + "in_proj.weight", {C, c.in_channels});
  in_b_ = expect_vector_f32(get, p + "in_proj.bias", C);
  final_ada_w_ = expect_weight(get, p + "final_layer.adaLN_modulation.1.weight", {2 * C, C});
  final_ada_b_ = expect_vector_f32(get, p + "final_layer.adaLN_modulation.1.bias", 2 * C);
  final_w_ = expect_weight(get, p + "final_layer.linear.weight", {c.out_channels, C});
  final_b_ = expect_vector_f32(get, p + "final_layer.linear.bias", c.out_channels);
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string q = fmt::format("{}blocks.{}.", p, i);
    Block b;
    b.q_w = expect_weight(get, q + "attn.to_q.weight", {I, C});
    b.q_b = expect_vector_f32(get, q + "attn.to_q.bias", I);
    b.k_w = expect_weight(get, q + "attn.to_k.weight", {I, C});
    b.k_b = expect_vector_f32(get, q + "attn.to_k.bias", I);
    b.v_w = expect_weight(get, q + "attn.to_v.weight", {I, C});
    b.v_b = expect_vector_f32(get, q + "attn.to_v.bias", I);
    b.proj_w = expect_weight(get, q + "attn.proj.weight", {C, I});
    b.proj_b = expect_vector_f32(get, q + "attn.proj.bias", C);
    b.qn_w = expect_vector_f32(get, q + "attn.q_norm.weight", c.head_dim);
    b.qn_b = expect_vector_f32(get, q + "attn.q_norm.bias", c.head_dim);
    b.kn_w = expect_vector_f32(get, q + "attn.k_norm.weight", c.head_dim);
    b.kn_b = expect_vector_f32(get, q + "attn.k_norm.bias", c.head_dim);
    b.fc1_w = expect_weight(get, q + "mlp.fc1.weight", {M, C});
    b.fc1_b = expect_vector_f32(get, q + "mlp.fc1.bias", M);
    b.fc2_w = expect_weight(get, q + "mlp.fc2.weight", {C, M});
    b.fc2_b = expect_vector_f32(get, q + "mlp.fc2.bias", C);
    b.conv1_w = expect_weight(get, q + "conv.block.1.weight", {C, C, kConvK});
    b.conv1_b = expect_vector_f32(get, q + "conv.block.1.bias", C);
    b.conv_ln_w = expect_vector_f32(get, q + "conv.block.3.weight", C);
    b.conv_ln_b = expect_vector_f32(get, q + "conv.block.3.bias", C);
    b.conv2_w = expect_weight(get, q + "conv.block.6.weight", {C, C, kConvK});
    b.conv2_b = expect_vector_f32(get, q + "conv.block.6.bias", C);
    b.ada_w = expect_weight(get, q + "adaLN_modulation.1.weight", {9 * C, C});
    b.ada_b = expect_vector_f32(get, q + "adaLN_modulation.1.bias", 9 * C);
    blocks_.push_back(std::move(b));
  }
}

void DiT::to(Device d) {
  for (Tensor* t : {&t1_w_, &t1_b_, &t2_w_, &t2_b_, &in_w_, &in_b_, &final_ada_w_, &final_ada_b_,
                    &final_w_, &final_b_})
    *t = on(*t, d);
  for (Block& b : blocks_)
    for (Tensor* t : {&b.q_w,       &b.q_b,       &b.k_w,     &b.k_b,     &b.v_w,     &b.v_b,
                      &b.proj_w,    &b.proj_b,    &b.qn_w,    &b.qn_b,    &b.kn_w,    &b.kn_b,
                      &b.fc1_w,     &b.fc1_b,     &b.fc2_w,   &b.fc2_b,   &b.conv1_w, &b.conv1_b,
                      &b.conv_ln_w, &b.conv_ln_b, &b.conv2_w, &b.conv2_b, &b.ada_w,   &b.ada_b})
      *t = on(*t, d);
}

Tensor DiT::attention(const Block& b, const Tensor& x, Tensor* k_cache, Tensor* v_cache) const {
  const int64_t B = x.dim(0), T = x.dim(1), H = c_.num_heads, Dh = c_.head_dim;
  Tensor q =
      ops::layer_norm(ops::linear(x, b.q_w, b.q_b).reshape({B, T, H, Dh}), b.qn_w, b.qn_b, kEps);
  Tensor k =
      ops::layer_norm(ops::linear(x, b.k_w, b.k_b).reshape({B, T, H, Dh}), b.kn_w, b.kn_b, kEps);
  Tensor v = ops::linear(x, b.v_w, b.v_b).reshape({B, T, H, Dh});
  if (k_cache && v_cache) {
    // New frames first, then the cache, as the official code keeps them. Attention does not
    // care (no positions, no mask), but the cache trimming of a long stream does.
    if (k_cache->defined()) {
      k = ops::concat_axis({k, *k_cache}, 1);
      v = ops::concat_axis({v, *v_cache}, 1);
    }
    *k_cache = k;
    *v_cache = v;
  }
  ops::AttentionOptions opt;
  opt.scale = 1.f / std::sqrt(static_cast<float>(Dh));
  Tensor a = ops::attention(q, k, v, opt).reshape({B, T, H * Dh});
  return ops::linear(a, b.proj_w, b.proj_b);
}

Tensor DiT::conv_block(const Block& b, const Tensor& x, Tensor* ctx1, Tensor* ctx2) const {
  Tensor h = causal_conv(ops::transpose_last2(x), b.conv1_w, b.conv1_b, ctx1);
  h = ops::layer_norm(ops::transpose_last2(h), b.conv_ln_w, b.conv_ln_b, kEps);
  ops::mish_(h);
  return ops::transpose_last2(causal_conv(ops::transpose_last2(h), b.conv2_w, b.conv2_b, ctx2));
}

Tensor DiT::forward(const Tensor& x_in, const Tensor& mu_in, const Tensor& t_in,
                    const Tensor& spks_in, const Tensor& cond_in, FlowTrace* trace,
                    DiTCache* cache) const {
  const Device dev = device();
  const Tensor x = on(x_in, dev), mu = on(mu_in, dev), t = on(t_in, dev), spks = on(spks_in, dev),
               cond = on(cond_in, dev);
  const int64_t O = c_.out_channels;
  if (x.ndim() != 3 || x.dim(1) != O || mu.shape() != x.shape() || cond.shape() != x.shape() ||
      t.shape() != Shape{x.dim(0)} || spks.shape() != Shape{x.dim(0), O})
    fail(
        "DiT: expected x = mu = cond [B, {}, T], t [B], spks [B, {}]; got x {}, mu {}, cond {}, "
        "t {}, spks {}",
        O, O, x.desc(), mu.desc(), cond.desc(), t.desc(), spks.desc());
  const int64_t T = x.dim(2);
  const size_t depth = blocks_.size();
  if (cache && cache->k.empty()) {
    cache->k.assign(depth, Tensor());
    cache->v.assign(depth, Tensor());
    cache->ctx1.assign(depth, Tensor());
    cache->ctx2.assign(depth, Tensor());
  }
  if (cache && (cache->k.size() != depth || cache->ctx1.size() != depth))
    fail("DiT: the cache holds {} blocks, the model has {}", cache->k.size(), depth);

  Tensor temb = ops::timestep_embedding(t, kFreqDim, kTimeScale, kMaxPeriod);
  temb = ops::linear(temb, t1_w_, t1_b_);
  ops::silu_(temb);
  temb = ops::linear(temb, t2_w_, t2_b_);
  if (trace) trace->emplace_back("dit/t_emb", temb);
  Tensor cvec = temb.clone();  // every adaLN reads SiLU(t_emb)
  ops::silu_(cvec);

  Tensor h = ops::concat_axis({x, mu, ops::repeat_time(spks, T), cond}, 1);
  h = ops::linear(ops::transpose_last2(h), in_w_, in_b_);    // [B, T, C]
  if (trace) trace->emplace_back("dit/in_proj", h.clone());  // h is updated in place below

  for (size_t i = 0; i < depth; ++i) {
    const Block& b = blocks_[i];
    // chunk(9): shift/scale/gate for attention, MLP, conv (in that order).
    Tensor mod = ops::linear(cvec, b.ada_w, b.ada_b);
    auto part = [&](int64_t j) { return ops::chunk_last(mod, 9, j); };
    Tensor a = attention(b, ops::modulated_layer_norm(h, part(0), part(1), kAdaEps),
                         cache ? &cache->k[i] : nullptr, cache ? &cache->v[i] : nullptr);
    ops::gated_add_(h, part(2), a);
    Tensor cv = conv_block(b, ops::modulated_layer_norm(h, part(6), part(7), kAdaEps),
                           cache ? &cache->ctx1[i] : nullptr, cache ? &cache->ctx2[i] : nullptr);
    ops::gated_add_(h, part(8), cv);
    Tensor m =
        ops::linear(ops::modulated_layer_norm(h, part(3), part(4), kAdaEps), b.fc1_w, b.fc1_b);
    ops::gelu_tanh_(m);
    ops::gated_add_(h, part(5), ops::linear(m, b.fc2_w, b.fc2_b));
    if (trace) trace->emplace_back(fmt::format("dit/block{}_out", i), h.clone());
  }
  Tensor fmod = ops::linear(cvec, final_ada_w_, final_ada_b_);
  Tensor out = ops::linear(ops::modulated_layer_norm(h, ops::chunk_last(fmod, 2, 0),
                                                     ops::chunk_last(fmod, 2, 1), kAdaEps),
                           final_w_, final_b_);  // [B, T, out]
  if (trace) trace->emplace_back("dit/final_out", out);
  out = ops::transpose_last2(out);
  if (trace) trace->emplace_back("dit/out", out);
  return out;
}

}  // namespace stepaudio
