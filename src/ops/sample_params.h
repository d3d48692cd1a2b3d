// The per-row settings of ops::sample_tokens, kept free of other headers so that the CUDA kernels
// can read the same record.
#pragma once
#include <cstdint>

namespace stepaudio::ops {

// One row's settings; stored as U8 [B, sizeof(SampleParams)] tensors on the compute device.
struct SampleParams {
  float temperature = 1.0f;         // <= 0 or greedy: argmax
  float top_p = 1.0f;               // >= 1: off
  float repetition_penalty = 1.0f;  // 1: off
  int32_t top_k = 0;                // 0: off
  uint64_t seed = 0;
  int32_t greedy = 1;
  int32_t pad = 0;
};
static_assert(sizeof(SampleParams) == 32, "SampleParams is a fixed 32-byte record");

}  // namespace stepaudio::ops
