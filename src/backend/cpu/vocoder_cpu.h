// CPU kernels for the HiFT vocoder's own ops (ops/vocoder_ops.h): the NSF harmonic source
// (SineGen2) and small element-wise helpers.
#pragma once
#include <cstdint>

namespace stepaudio::cpu {

struct NsfParams {
  int64_t dim = 9;         // harmonics including the fundamental
  int64_t upsample = 480;  // samples per f0 frame
  float sample_rate = 24000.f;
  float sine_amp = 0.1f, noise_std = 0.003f, voiced_threshold = 10.f;
};

// SineGen2 on one f0 track: f0 [F] (Hz) -> out [F*upsample, dim] = sin(phase)*amp*uv + noise_amp *
// noise. rand_ini [dim] (element 0 ignored) and noise [F*upsample, dim] may be null (zeros).
void nsf_sines(const float* f0, int64_t F, const float* rand_ini, const float* noise,
               const NsfParams& p, float* out);

void abs(float* x, int64_t n);
void clamp(float* x, int64_t n, float lo, float hi);
// y[i] = head[i] * w[i] + tail[i] * w[n + i] with w = np.hamming(2n) in float64.
void hamming_crossfade(const float* head, const float* tail, int64_t n, float* y);

}  // namespace stepaudio::cpu
