#include "backend/cpu/vocoder_cpu.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {

constexpr int64_t kGrain = 16384;

// The source position of output j of F.interpolate(mode="linear", align_corners=False) with a
// scale factor: torch uses 1/scale_factor (rounded to float) as the step and computes in float.
struct LinearTap {
  int64_t i0, i1;
  float l0, l1;
};

LinearTap linear_tap(int64_t j, float step, int64_t in_size) {
  float src = step * (static_cast<float>(j) + 0.5f) - 0.5f;
  if (src < 0.f) src = 0.f;
  const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in_size - 1);
  const float l1 = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
  return {i0, i0 + (i0 < in_size - 1 ? 1 : 0), 1.f - l1, l1};
}

}  // namespace

void nsf_sines(const float* f0, int64_t F, const float* rand_ini, const float* noise,
               const NsfParams& p, float* out) {
  const int64_t up = p.upsample, D = p.dim, N = F * up;
  if (F == 0) return;
  // Per-sample phase increments rad = (f0*h / sr) % 1, constant within a frame, plus the random
  // initial phase at sample 0 (harmonics 1.. only).
  auto rad = [&](int64_t j, int64_t h) {
    const float fn = f0[j / up] * static_cast<float>(h + 1);
    const float v = fn / p.sample_rate;
    float r = std::fmod(v, 1.f);
    if (r < 0.f) r += 1.f;
    if (j == 0 && h > 0 && rand_ini) r += rand_ini[h];
    return r;
  };
  // Down-sample the increments to one per frame (linear, scale 1/up), cumulate them (torch's CPU
  // cumsum accumulates float32 in double), times 2*pi and up (each product rounded to float32).
  const float down_step = static_cast<float>(1.0 / (1.0 / static_cast<double>(up)));
  const float pi_f = static_cast<float>(std::numbers::pi);
  std::vector<float> phase(static_cast<size_t>(F * D));
  std::vector<double> cum(static_cast<size_t>(D), 0.0);
  for (int64_t k = 0; k < F; ++k) {
    const LinearTap t = linear_tap(k, down_step, N);
    for (int64_t h = 0; h < D; ++h) {
      const float r = rad(t.i0, h) * t.l0 + rad(t.i1, h) * t.l1;
      cum[h] += r;
      const float ph = static_cast<float>(cum[h]) * 2.f * pi_f;
      phase[k * D + h] = ph * static_cast<float>(up);
    }
  }
  // Up-sample the phase back to samples (linear, scale up), then the sines, voicing and noise.
  const float up_step = static_cast<float>(1.0 / static_cast<double>(up));
  const float unvoiced_amp = static_cast<float>(static_cast<double>(p.sine_amp) / 3.0);
  parallel_for(N, std::max<int64_t>(1, kGrain / D), [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const LinearTap t = linear_tap(j, up_step, F);
      const float uv = f0[j / up] > p.voiced_threshold ? 1.f : 0.f;
      const float amp = uv * p.noise_std + (1.f - uv) * unvoiced_amp;
      for (int64_t h = 0; h < D; ++h) {
        const float ph = phase[t.i0 * D + h] * t.l0 + phase[t.i1 * D + h] * t.l1;
        const float sine = std::sin(ph) * p.sine_amp;
        const float nz = noise ? amp * noise[j * D + h] : amp * 0.f;
        out[j * D + h] = sine * uv + nz;
      }
    }
  });
}

void abs(float* x, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = std::fabs(x[i]);
  });
}

void clamp(float* x, int64_t n, float lo, float hi) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = std::min(std::max(x[i], lo), hi);
  });
}

void hamming_crossfade(const float* head, const float* tail, int64_t n, float* y) {
  const double m = static_cast<double>(2 * n - 1);
  auto w = [&](int64_t i) { return 0.54 - 0.46 * std::cos(2.0 * std::numbers::pi * i / m); };
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(head[i] * w(i) + tail[i] * w(n + i));
}

}  // namespace stepaudio::cpu
