// The adaptor between the audio encoder and the LLM (spec §4): Conv1d(k3, s2, p1) + GELU over
// time, Linear(n_state -> 2048) + ReLU, Linear(2048 -> llm_dim). 25 Hz in, 12.5 Hz out.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "model/weights.h"

namespace stepaudio {

class Adaptor {
 public:
  Adaptor(const AudioEncoderConfig& cfg, const WeightFn& get);

  // x: F32 [B, T3, n_state] (the encoder output, padded rows included) -> F32 [B, T4, llm_dim]
  Tensor forward(const Tensor& x) const;

  // Output rows for `t` input rows: (t + 2 - kernel) / stride + 1 (the conv's length formula).
  int64_t out_len(int64_t t) const;

  // Moves the weights to `device` (matrices as `matrices`, vectors as F32).
  void upload(Device device, DType matrices);

 private:
  AudioEncoderConfig cfg_;
  Tensor conv_w_, conv_b_, w1_, b1_, w2_, b2_;
};

}  // namespace stepaudio
