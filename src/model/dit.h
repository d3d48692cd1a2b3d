// The flow's velocity estimator: a DiT (adaLN-Zero transformer) with per-head q/k LayerNorm, a
// causal conv block and a tanh-GELU MLP in every block, conditioned on the timestep. Called on
// the CFG batch (conditional row, unconditional row) in one pass.
#pragma once
#include <vector>

#include "model/flow_config.h"

namespace stepaudio {

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

 private:
  struct Block {
    Tensor q_w, q_b, k_w, k_b, v_w, v_b, proj_w, proj_b, qn_w, qn_b, kn_w, kn_b;
    Tensor fc1_w, fc1_b, fc2_w, fc2_b;
    Tensor conv1_w, conv1_b, conv_ln_w, conv_ln_b, conv2_w, conv2_b;
    Tensor ada_w, ada_b;
  };
  Tensor attention(const Block& b, const Tensor& x, Tensor* k_cache, Tensor* v_cache) const;
  Tensor conv_block(const Block& b, const Tensor& x, Tensor* ctx1, Tensor* ctx2) const;

  DiTConfig c_;
  Tensor t1_w_, t1_b_, t2_w_, t2_b_, in_w_, in_b_, final_ada_w_, final_ada_b_, final_w_, final_b_;
  std::vector<Block> blocks_;
};

}  // namespace stepaudio
