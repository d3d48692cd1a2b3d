// The flow's velocity estimator: a DiT (adaLN-Zero transformer) with per-head q/k LayerNorm, a
// causal conv block and a tanh-GELU MLP in every block, conditioned on the timestep. Called on
// the CFG batch (conditional row, unconditional row) in one pass.
#pragma once
#include <string>
#include <vector>

#include "model/flow_config.h"

namespace stepaudio {

// The token2wav numerics on the GPU. Fp32: every product in exact fp32, as the official code (the
// goldens and the CPU-vs-GPU tests use it). Fast: the matrix products (linears, convolutions) in
// TF32 on the tensor cores, the DiT attention in the bf16 flash kernel, the random draws made on
// the GPU by a counter-based generator. On the CPU both modes compute the fp32 reference.
enum class T2wPrecision { Fp32, Fast };
// "fp32" or "fast"; anything else fails naming `where` and the accepted values.
T2wPrecision parse_t2w_precision(const std::string& text, const std::string& where);
const char* t2w_precision_name(T2wPrecision p);

// Streaming state of one estimator call site (one ODE step): per block the keys / values seen so
// far and the causal convs' left context.
struct DiTCache {
  std::vector<Tensor> k, v;        // per block [B, t, H, head_dim], newest chunk first
  std::vector<Tensor> ctx1, ctx2;  // per block [B, C, 2]
  int64_t frames() const { return k.empty() || !k[0].defined() ? 0 : k[0].dim(1); }
};

class DiT {
 public:
  DiT(const DiTConfig& c, const WeightFn& get);

  // x, mu, cond [B, out, T]; t [B]; spks [B, out] -> velocity [B, out, T]. Records dit/t_emb,
  // dit/in_proj, dit/block<i>_out, dit/final_out, dit/out when `trace` is set. With `cache`, the
  // frames attend to the cached frames too and the convs continue from the cached context (the
  // cache is extended); without, the frames see each other only and the convs start from zeros.
  Tensor forward(const Tensor& x, const Tensor& mu, const Tensor& t, const Tensor& spks,
                 const Tensor& cond, FlowTrace* trace = nullptr, DiTCache* cache = nullptr) const;

  const DiTConfig& config() const { return c_; }
  // Moves the weights to `d`; forward() then runs there (its inputs are moved to it).
  void to(Device d);
  Device device() const { return t1_w_.device(); }
  void set_precision(T2wPrecision p) {
    precision_ = p;
    prepare_fused();
  }
  T2wPrecision precision() const { return precision_; }

 private:
  struct Block {
    Tensor q_w, q_b, k_w, k_b, v_w, v_b, proj_w, proj_b, qn_w, qn_b, kn_w, kn_b;
    Tensor fc1_w, fc1_b, fc2_w, fc2_b;
    Tensor conv1_w, conv1_b, conv_ln_w, conv_ln_b, conv2_w, conv2_b;
    Tensor ada_w, ada_b;
    Tensor qkv_w, qkv_b;            // fast mode on the GPU: q, k, v stacked for one product
    Tensor conv1_taps, conv2_taps;  // fast mode on the GPU: ops::conv_taps of the conv weights
  };
  // Builds (fast mode, GPU, F32 weights) or drops the stacked q/k/v weights and the conv taps.
  void prepare_fused();
  Tensor attention(const Block& b, const Tensor& x, Tensor* k_cache, Tensor* v_cache) const;
  Tensor conv_block(const Block& b, const Tensor& x, Tensor* ctx1, Tensor* ctx2) const;
  bool fast() const { return precision_ == T2wPrecision::Fast; }
  // ops::linear, or its TF32 form in the fast mode.
  Tensor lin(const Tensor& x, const Tensor& w, const Tensor& b) const;

  DiTConfig c_;
  Tensor t1_w_, t1_b_, t2_w_, t2_b_, in_w_, in_b_, final_ada_w_, final_ada_b_, final_w_, final_b_;
  std::vector<Block> blocks_;
  T2wPrecision precision_ = T2wPrecision::Fp32;
};

}  // namespace stepaudio
