// Sizes of the token2wav flow model (CausalMaskedDiffWithXvec: conformer encoder, CFM, DiT
// estimator), read from the official token2wav/flow.yaml and checked against the weights.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/weights.h"

namespace stepaudio {

struct FlowEncoderConfig {
  int64_t input_size = 512;  // must equal output_size (up_embed reuses input_size)
  int64_t output_size = 512;
  int64_t pre_lookahead_len = 3;
  int64_t num_blocks = 6;
  int64_t num_up_blocks = 4;
  int64_t up_stride = 2;  // the up-sampling factor (up_scale_factor must equal it)
  int64_t attention_heads = 8;
  int64_t linear_units = 2048;
};

struct DiTConfig {
  int64_t in_channels = 320;  // x, mu, speaker, cond: 4 * out_channels
  int64_t out_channels = 80;
  int64_t hidden_size = 512;
  int64_t depth = 16;
  int64_t num_heads = 8;
  int64_t head_dim = 64;
  int64_t mlp_hidden = 2048;  // int(hidden_size * mlp_ratio)
};

struct FlowConfig {
  int64_t input_size = 512;  // token embedding width
  int64_t output_size = 80;  // mel bins
  int64_t spk_embed_dim = 192;
  int64_t vocab_size = 6561;
  FlowEncoderConfig encoder;
  double inference_cfg_rate = 0.7;
  DiTConfig dit;

  // Parses flow.yaml text (the `!new:` tags are ignored); `where` names the source in errors.
  // Fails on a missing or non-numeric size, an unsupported variant (input_layer,
  // pos_enc_layer_type, selfattention_layer_type, normalize_before, output_type) or sizes that
  // cannot fit together.
  static FlowConfig parse(const std::string& yaml_text, const std::string& where);
  static FlowConfig load(const std::string& path);

  // Checks every flow weight's shape against these sizes, and that the weights hold no more
  // encoder / DiT blocks than configured. The error names the config field and the tensor.
  void check_weights(const WeightFn& get) const;
};

}  // namespace stepaudio

namespace stepaudio {
// Named intermediates a forward pass records when asked (golden names such as "flow/mu", shapes
// without the batch axis where the goldens have none).
using FlowTrace = std::vector<std::pair<std::string, Tensor>>;
}  // namespace stepaudio
