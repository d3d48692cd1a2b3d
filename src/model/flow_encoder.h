// UpsampleConformerEncoderV2 (token2wav flow encoder): linear embed + ESPnet relative positions,
// pre-lookahead convs, conformer blocks, x2 nearest up-sampling + conv, a second embed and
// conformer stack, final LayerNorm. Offline (whole utterance) and chunked (streaming, with
// caches) forward passes; each stage is public so tests can feed it golden inputs.
#pragma once
#include <vector>

#include "model/flow_config.h"

namespace stepaudio {

// Streaming state: the convolutions' left context and every conformer layer's keys / values.
struct FlowEncoderCache {
  Tensor lookahead_ctx;      // [1, D, 2]   last conv1 outputs (pre-lookahead conv2 context)
  Tensor up_ctx;             // [1, D, 2*up_stride]  last up-sampled frames (up conv context)
  std::vector<Tensor> k, v;  // per layer (blocks, then up blocks): [1, t, H, D/H]
  int64_t frames() const { return k.empty() || !k[0].defined() ? 0 : k[0].dim(1); }  // stage 1
};

class FlowEncoder {
 public:
  FlowEncoder(const FlowEncoderConfig& c, const WeightFn& get);

  // x [1, T, D] token embeddings -> [1, up_stride*T, D]. Records the flow/enc_* stages.
  Tensor forward(const Tensor& x, FlowTrace* trace = nullptr) const;

  // Chunked forward: x [1, T, D] holds the chunk plus pre_lookahead_len look-ahead tokens (unless
  // last_chunk, which pads the look-ahead with zeros) -> [1, up_stride*(T-L), D] (or
  // up_stride*T when last). Reads and extends `cache` (empty at the start).
  Tensor forward_chunk(const Tensor& x, bool last_chunk, FlowEncoderCache& cache) const;

  // The stages. x is [B, T, D] unless said.
  Tensor embed(const Tensor& x, bool up) const;  // Linear, LayerNorm, * sqrt(D)
  Tensor pos_table(int64_t size) const;          // [2*size-1, D]
  Tensor pre_lookahead(const Tensor& x) const;
  // Conformer layer i of the first (up = false) or second stack; pos [2*T2-1, D] for T2 keys. With
  // k_cache / v_cache set, the cached keys come first and the caches are extended.
  Tensor layer(int64_t i, bool up, const Tensor& x, const Tensor& pos, Tensor* k_cache = nullptr,
               Tensor* v_cache = nullptr) const;
  Tensor upsample(const Tensor& x) const;  // [B, T, D] -> [B, D, s*T] (channels first)
  Tensor final_norm(const Tensor& x) const;

  const FlowEncoderConfig& config() const { return c_; }
  // Moves the weights to `d`; the stages then run there (their inputs are moved to it).
  void to(Device d);
  Device device() const { return embed_.w.device(); }

 private:
  struct Embed {
    Tensor w, b, ln_w, ln_b;
  };
  struct Layer {
    Tensor ln_mha_w, ln_mha_b, q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b, pos_w, pos_u, pos_v;
    Tensor ln_ff_w, ln_ff_b, w1, b1, w2, b2;
  };
  static Embed load_embed(const WeightFn& get, const std::string& p, int64_t in, int64_t d);
  Layer load_layer(const WeightFn& get, const std::string& p) const;

  FlowEncoderConfig c_;
  Embed embed_, up_embed_;
  Tensor look1_w_, look1_b_, look2_w_, look2_b_, up_w_, up_b_, norm_w_, norm_b_;
  std::vector<Layer> layers_, up_layers_;
};

}  // namespace stepaudio
