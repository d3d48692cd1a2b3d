// The CPU reference of ops::sample_tokens (one row).
#pragma once
#include <cstdint>

#include "ops/sample_ops.h"

namespace stepaudio::cpu {

// logits [V] (not modified), presence [V] (the chosen id is marked), step: the row's counter.
int32_t sample_row(const float* logits, int64_t V, const ops::SampleParams& p, uint8_t* presence,
                   int64_t step);

}  // namespace stepaudio::cpu
