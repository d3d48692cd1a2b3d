// Normalisations over the last axis, computed in f32.
#pragma once
#include <cstdint>

namespace stepaudio::cpu {

// y = (x - mean) / sqrt(var + eps) * w + b per row of n (biased variance, as torch).
void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps,
                float* y);
// y = w * (x / sqrt(mean(x^2) + eps)) per row of n (HF Qwen2RMSNorm in f32).
void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y);

}  // namespace stepaudio::cpu
