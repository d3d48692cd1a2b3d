#include "model/dit.h"

#include <cmath>

#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"
#include "ops/vocoder_ops.h"

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

T2wPrecision parse_t2w_precision(const std::string& text, const std::string& where) {
  if (text == "fp32") return T2wPrecision::Fp32;
  if (text == "fast") return T2wPrecision::Fast;
  fail("{}: unknown token2wav precision '{}', expected fp32 or fast", where, text);
}

const char* t2w_precision_name(T2wPrecision p) { return p == T2wPrecision::Fast ? "fast" : "fp32"; }

Tensor DiT::lin(const Tensor& x, const Tensor& w, const Tensor& b) const {
  return fast() ? ops::linear_tf32(x, w, b) : ops::linear(x, w, b);
}

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
  prepare_fused();
}

void DiT::prepare_fused() {
  const bool want = fast() && device().is_cuda();
  for (Block& b : blocks_) {
    const bool f32 =
        b.q_w.dtype() == DType::F32 && b.k_w.dtype() == DType::F32 && b.v_w.dtype() == DType::F32;
    if (!want || !f32) {
      b.qkv_w = b.qkv_b = Tensor();
    } else if (!b.qkv_w.defined() || b.qkv_w.device() != device()) {
      b.qkv_w = ops::concat_axis({b.q_w, b.k_w, b.v_w}, 0);
      b.qkv_b = ops::concat_axis({b.q_b, b.k_b, b.v_b}, 0);
    }
    for (auto [w, taps] : {std::pair{&b.conv1_w, &b.conv1_taps}, {&b.conv2_w, &b.conv2_taps}}) {
      if (!want || w->dtype() != DType::F32)
        *taps = Tensor();
      else if (!taps->defined() || taps->device() != device())
        *taps = ops::conv_taps(*w);
    }
  }
}

Tensor DiT::attention(const Block& b, const Tensor& x, Tensor* k_cache, Tensor* v_cache) const {
  const int64_t B = x.dim(0), T = x.dim(1), H = c_.num_heads, Dh = c_.head_dim;
  Tensor q, k, v;
  if (b.qkv_w.defined()) {  // fast mode on the GPU: one product, one split + norm kernel
    // Written in bf16, the flash kernel's input, unless they go into the cache (kept in F32: the
    // stream concatenates and trims it with the F32 ops).
    const DType qkv_type = k_cache ? DType::F32 : DType::BF16;
    std::vector<Tensor> qkv = ops::split_qkv_norm(lin(x, b.qkv_w, b.qkv_b), H, Dh, b.qn_w, b.qn_b,
                                                  b.kn_w, b.kn_b, kEps, qkv_type);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    q = ops::layer_norm(lin(x, b.q_w, b.q_b).reshape({B, T, H, Dh}), b.qn_w, b.qn_b, kEps);
    k = ops::layer_norm(lin(x, b.k_w, b.k_b).reshape({B, T, H, Dh}), b.kn_w, b.kn_b, kEps);
    v = lin(x, b.v_w, b.v_b).reshape({B, T, H, Dh});
  }
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
  // Fast: the bf16 tensor-core flash kernel (q, k, v and the probabilities rounded to bf16,
  // softmax and sums in fp32). q and k are LayerNormed, so the scores stay small and the rounding
  // costs about 3 significant digits of each attention output, not more.
  if (fast()) opt.compute = DType::BF16;
  Tensor a = ops::attention(q, k, v, opt).reshape({B, T, H * Dh});
  return lin(a, b.proj_w, b.proj_b);
}

Tensor DiT::conv_block(const Block& b, const Tensor& x, Tensor* ctx1, Tensor* ctx2) const {
  if (fast()) {  // channels-last throughout: no transposes around the convs
    Tensor h = ops::causal_conv_cl(x, b.conv1_w, b.conv1_b, ctx1, true, b.conv1_taps);
    h = ops::layer_norm_mish(h, b.conv_ln_w, b.conv_ln_b, kEps);
    return ops::causal_conv_cl(h, b.conv2_w, b.conv2_b, ctx2, true, b.conv2_taps);
  }
  Tensor h = causal_conv(ops::transpose_last2(x), b.conv1_w, b.conv1_b, ctx1);
  h = ops::layer_norm_mish(ops::transpose_last2(h), b.conv_ln_w, b.conv_ln_b, kEps);
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
  temb = lin(temb, t1_w_, t1_b_);
  ops::silu_(temb);
  temb = lin(temb, t2_w_, t2_b_);
  if (trace) trace->emplace_back("dit/t_emb", temb);
  // Every adaLN reads SiLU(t_emb). An ops copy, not clone(): clone's synchronous cudaMemcpy
  // cannot be captured in a CUDA graph (Flow::solve captures one Euler step).
  Tensor cvec = Tensor::empty(temb.shape(), DType::F32, temb.device());
  ops::copy_(cvec, temb);
  ops::silu_(cvec);

  Tensor h = ops::concat_axis({x, mu, ops::repeat_time(spks, T), cond}, 1);
  h = lin(ops::transpose_last2(h), in_w_, in_b_);            // [B, T, C]
  if (trace) trace->emplace_back("dit/in_proj", h.clone());  // h is updated in place below

  // Each gated residual is added by the next adaLN's kernel (one pass over h for both): the
  // pending (gate, y) until then. With a trace every block's h is complete at its end.
  Tensor pend_gate, pend_y;
  auto norm = [&](const Tensor& shift, const Tensor& scale) {
    if (!pend_y.defined()) return ops::modulated_layer_norm(h, shift, scale, kAdaEps);
    Tensor r = ops::gated_add_modulated_ln_(h, pend_gate, pend_y, shift, scale, kAdaEps);
    pend_gate = pend_y = Tensor();
    return r;
  };
  for (size_t i = 0; i < depth; ++i) {
    const Block& b = blocks_[i];
    // chunk(9): shift/scale/gate for attention, MLP, conv (in that order), split in one copy.
    const Tensor mod = ops::chunks_last(lin(cvec, b.ada_w, b.ada_b), 9);
    auto part = [&](int64_t j) {
      return mod.slice_rows(j, j + 1).reshape({mod.dim(1), mod.dim(2)});
    };
    pend_y = attention(b, norm(part(0), part(1)), cache ? &cache->k[i] : nullptr,
                       cache ? &cache->v[i] : nullptr);
    pend_gate = part(2);
    pend_y = conv_block(b, norm(part(6), part(7)), cache ? &cache->ctx1[i] : nullptr,
                        cache ? &cache->ctx2[i] : nullptr);
    pend_gate = part(8);
    Tensor m = lin(norm(part(3), part(4)), b.fc1_w, b.fc1_b);
    ops::gelu_tanh_(m);
    pend_y = lin(m, b.fc2_w, b.fc2_b);
    pend_gate = part(5);
    if (trace) {
      ops::gated_add_(h, pend_gate, pend_y);
      pend_gate = pend_y = Tensor();
      trace->emplace_back(fmt::format("dit/block{}_out", i), h.clone());
    }
  }
  const Tensor fmod = ops::chunks_last(lin(cvec, final_ada_w_, final_ada_b_), 2);
  const int64_t B = fmod.dim(1), C = fmod.dim(2);
  Tensor out =
      lin(norm(fmod.slice_rows(0, 1).reshape({B, C}), fmod.slice_rows(1, 2).reshape({B, C})),
          final_w_, final_b_);  // [B, T, out]
  if (trace) trace->emplace_back("dit/final_out", out);
  out = ops::transpose_last2(out);
  if (trace) trace->emplace_back("dit/out", out);
  return out;
}

}  // namespace stepaudio
