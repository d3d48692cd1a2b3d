#include "backend/cpu/pointwise_cpu.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/convert_cpu.h"
#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {
constexpr int64_t kGrain = 16384;
}

void gelu(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * static_cast<float>(M_SQRT1_2)));
  });
}

void relu(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  });
}

void add(float* a, int64_t n, const void* b, DType bt, int64_t nb) {
  if (bt == DType::F32) {
    const float* bf = static_cast<const float*>(b);
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) a[i] += bf[i % nb];
    });
    return;
  }
  // The broadcast operand is small (one row of positions or a bias): convert it once.
  std::vector<float> bf(static_cast<size_t>(nb));
  to_f32(b, bt, bf.data(), nb);
  add(a, n, bf.data(), DType::F32, nb);
}

void rope(float* x, int64_t L, int64_t heads, int64_t head_dim, int64_t start, double theta) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float p = static_cast<float>(
        std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim)));
    inv_freq[static_cast<size_t>(i)] = 1.0f / p;
  }
  parallel_for(
      L, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, heads * head_dim)),
      [&](int64_t l0, int64_t l1) {
        std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
        for (int64_t l = l0; l < l1; ++l) {
          const float pos = static_cast<float>(start + l);
          for (int64_t i = 0; i < half; ++i) {
            const float ang = pos * inv_freq[static_cast<size_t>(i)];
            cs[static_cast<size_t>(i)] = static_cast<float>(std::cos(static_cast<double>(ang)));
            sn[static_cast<size_t>(i)] = static_cast<float>(std::sin(static_cast<double>(ang)));
          }
          for (int64_t h = 0; h < heads; ++h) {
            float* v = x + (l * heads + h) * head_dim;
            for (int64_t i = 0; i < half; ++i) {
              const float a = v[i], b = v[i + half];
              const float c = cs[static_cast<size_t>(i)], s = sn[static_cast<size_t>(i)];
              v[i] = a * c - b * s;
              v[i + half] = b * c + a * s;
            }
          }
        }
      });
}

void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
               float* out) {
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(dt);
  parallel_for(n, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, dim)),
               [&](int64_t b, int64_t e) {
                 for (int64_t i = b; i < e; ++i)
                   to_f32(static_cast<const char*>(table) + static_cast<size_t>(ids[i]) * row_bytes,
                          dt, out + i * dim, dim);
               });
}

void avg_pool2_time(const float* x, int64_t B, int64_t T, int64_t C, float* y) {
  const int64_t To = T / 2;
  parallel_for(B * To, std::max<int64_t>(1, kGrain / std::max<int64_t>(C, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t b = r / To, t = r % To;
                   const float* a = x + (b * T + 2 * t) * C;
                   float* o = y + r * C;
                   for (int64_t c = 0; c < C; ++c) o[c] = (a[c] + a[c + C]) / 2.0f;
                 }
               });
}

void transpose_last2(const float* x, int64_t B, int64_t C, int64_t T, float* y) {
  constexpr int64_t kTile = 32;
  const int64_t tiles_c = (C + kTile - 1) / kTile;
  parallel_for(B * tiles_c, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, kTile * T)),
               [&](int64_t w0, int64_t w1) {
                 for (int64_t w = w0; w < w1; ++w) {
                   const int64_t b = w / tiles_c, c0 = (w % tiles_c) * kTile,
                                 c1 = std::min(C, c0 + kTile);
                   const float* xb = x + b * C * T;
                   float* yb = y + b * C * T;
                   for (int64_t t0 = 0; t0 < T; t0 += kTile) {
                     const int64_t t1 = std::min(T, t0 + kTile);
                     for (int64_t c = c0; c < c1; ++c)
                       for (int64_t t = t0; t < t1; ++t) yb[t * C + c] = xb[c * T + t];
                   }
                 }
               });
}

void im2col_1d(const float* x, int64_t C, int64_t T, int64_t K, int64_t stride, int64_t pad,
               int64_t T_out, float* col) {
  parallel_for(T_out, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C * K)),
               [&](int64_t t0, int64_t t1) {
                 for (int64_t t = t0; t < t1; ++t) {
                   float* row = col + t * C * K;
                   const int64_t base = t * stride - pad;
                   for (int64_t c = 0; c < C; ++c)
                     for (int64_t k = 0; k < K; ++k) {
                       const int64_t src = base + k;
                       row[c * K + k] = (src >= 0 && src < T) ? x[c * T + src] : 0.0f;
                     }
                 }
               });
}

}  // namespace stepaudio::cpu
