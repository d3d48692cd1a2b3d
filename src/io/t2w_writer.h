// Writes a token2wav folder with random weights in the official layout: flow.yaml (the official
// file's keys and nesting), flow.safetensors and hift.safetensors (the tensor names, order and
// shapes of the official flow.pt / hift.pt state dicts, weight norm stored as the
// parametrizations.weight.original0/1 pairs), and a random voice.safetensors. For tests, the
// demo and benchmarks without the real weights; the output is noise, not speech.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/flow_config.h"

namespace stepaudio {

struct T2wPreset {
  FlowConfig flow;
  int64_t hift_base_channels = 512;  // conv_pre width (official 512)
  int64_t hift_cond_channels = 512;  // f0 predictor width (official 512)
};

// "tiny" (the sizes of golden/token2wav-a) or "full" (the official token2wav). Error otherwise.
T2wPreset t2w_preset(const std::string& name);

// flow.yaml text in the official layout with these sizes (FlowConfig::parse reads it back).
std::string flow_yaml(const FlowConfig& c);

using TensorLayout = std::vector<std::pair<std::string, Shape>>;
// The official state-dict names and shapes, in the official order.
TensorLayout flow_weight_layout(const FlowConfig& c);
TensorLayout hift_weight_layout(int64_t base_channels, int64_t cond_channels,
                                int64_t in_channels = 80);
uint64_t layout_params(const TensorLayout& layout);

// In-memory random weights for a layout, weight norm folded as at load (fold_t2w_weights):
// matrices and conv kernels uniform in +-1/sqrt(fan_in), norm weights and Snake alphas around 1,
// biases small, weight-norm g around 1, so that activations stay in range through the full-size
// stacks. For benchmarks and GPU tests that need a model without files.
std::map<std::string, Tensor> random_t2w_weights(const TensorLayout& layout, uint64_t seed,
                                                 const std::string& where);

struct T2wWriteSummary {
  uint64_t flow_params = 0, hift_params = 0;
  std::vector<std::string> files;  // relative to the folder
};

// Writes flow.yaml, flow.safetensors, hift.safetensors and voice.safetensors (a random voice of
// `voice_codes` prompt codes) into `dir` (created if needed). Each file is written atomically.
T2wWriteSummary write_random_token2wav(const std::string& dir, const T2wPreset& preset,
                                       uint64_t seed = 1234, int64_t voice_codes = 50);

}  // namespace stepaudio
