#include "backend/cpu/act_cpu.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {

constexpr int64_t kGrain = 16384;

template <typename F>
void apply(float* x, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = f(x[i]);
  });
}

}  // namespace

void activation(Act act, float* x, int64_t n, float p) {
  switch (act) {
    case Act::LeakyRelu:
      return apply(x, n, [p](float v) { return v >= 0.f ? v : v * p; });
    case Act::Elu:
      return apply(x, n, [p](float v) { return v > 0.f ? v : p * std::expm1(v); });
    case Act::Silu:
      return apply(x, n, [](float v) { return v / (1.f + std::exp(-v)); });
    case Act::Mish:
      // tanh(log(1 + e^v)) = n / (n + 2) with n = e^v (e^v + 2): one exp instead of exp, log1p
      // and tanh (the DiT's conv blocks spend much of their non-GEMM time here).
      return apply(x, n, [](float v) {
        if (v > 20.f) return v;
        const float e = std::exp(v), m = e * (e + 2.f);
        return v * m / (m + 2.f);
      });
    case Act::Tanh:
      return apply(x, n, [](float v) { return std::tanh(v); });
    case Act::GeluTanh:
      return apply(x, n, [](float v) {
        constexpr float k = 0.7978845608028654f;  // sqrt(2/pi)
        // 1 + tanh(z) = 2 - 2 / (e^{2z} + 1); saturates correctly when e^{2z} over/underflows.
        const float z = k * (v + 0.044715f * v * v * v);
        return 0.5f * v * (2.f - 2.f / (std::exp(2.f * z) + 1.f));
      });
    case Act::Exp:
      return apply(x, n, [](float v) { return std::exp(v); });
    case Act::Sin:
      return apply(x, n, [](float v) { return std::sin(v); });
    case Act::Scale:
      return apply(x, n, [p](float v) { return v * p; });
  }
}

void mul(float* a, const float* b, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) a[i] *= b[i];
  });
}

void snake(float* x, const float* alpha, int64_t B, int64_t C, int64_t T) {
  parallel_for(B * C, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, T)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float a = alpha[r % C];
                   const float inv = 1.f / (a + 1e-9f);
                   float* row = x + r * T;
                   for (int64_t t = 0; t < T; ++t) {
                     const float s = std::sin(a * row[t]);
                     row[t] += inv * s * s;
                   }
                 }
               });
}

}  // namespace stepaudio::cpu
