#include "backend/cpu/flow_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <cblas.h>

#include "backend/cpu/counter_rng.h"
#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {
constexpr int64_t kGrain = 16384;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

void rel_pos_table(int64_t size, int64_t d_model, float* out) {
  // Same float32 steps as the PyTorch table: w_k = exp(2k * -(ln(10000)/d)), angle = pos * w_k.
  const float step = static_cast<float>(-(std::log(10000.0) / static_cast<double>(d_model)));
  std::vector<float> w(static_cast<size_t>(d_model / 2));
  for (int64_t k = 0; k < d_model / 2; ++k)
    w[static_cast<size_t>(k)] = std::exp(static_cast<float>(2 * k) * step);
  const int64_t rows = 2 * size - 1;
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, d_model)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t p = size - 1 - r;
                   const float pos = static_cast<float>(p < 0 ? -p : p);
                   float* o = out + r * d_model;
                   for (int64_t k = 0; k < d_model / 2; ++k) {
                     const float a = pos * w[static_cast<size_t>(k)];
                     const float s = std::sin(a);
                     o[2 * k] = p < 0 ? -s : s;
                     o[2 * k + 1] = std::cos(a);
                   }
                 }
               });
}

void rel_pos_attention(const float* q, const float* k, const float* v, const float* p,
                       const float* u, const float* w, const RelAttentionShape& s, float* out) {
  const int64_t T1 = s.q_len, T2 = s.kv_len, H = s.heads, D = s.head_dim, HD = H * D;
  if (T1 == 0) return;
  const float sqrt_d = std::sqrt(static_cast<float>(D));
  const int64_t QB = 128;
  const int64_t max_rows = std::min(QB, T1);
  std::vector<float> qu(static_cast<size_t>(max_rows * D)), qw(qu.size());
  std::vector<float> ac(static_cast<size_t>(max_rows * T2));
  std::vector<float> bd(static_cast<size_t>(max_rows * (T2 + max_rows - 1)));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const float* kb = k + b * T2 * HD + h * D;
      const float* vb = v + b * T2 * HD + h * D;
      for (int64_t i0 = 0; i0 < T1; i0 += QB) {
        const int64_t rows = std::min(QB, T1 - i0);
        for (int64_t r = 0; r < rows; ++r) {
          const float* qr = q + (b * T1 + i0 + r) * HD + h * D;
          for (int64_t c = 0; c < D; ++c) {
            qu[static_cast<size_t>(r * D + c)] = qr[c] + u[h * D + c];
            qw[static_cast<size_t>(r * D + c)] = qr[c] + w[h * D + c];
          }
        }
        // Query i = i0 + r reads table rows T1-1-i+j, j < T2: for this block of queries that is
        // the window [base, base + width).
        const int64_t base = T1 - i0 - rows, width = T2 + rows - 1;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                    static_cast<int>(T2), static_cast<int>(D), 1.0f, qu.data(), static_cast<int>(D),
                    kb, static_cast<int>(HD), 0.0f, ac.data(), static_cast<int>(T2));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                    static_cast<int>(width), static_cast<int>(D), 1.0f, qw.data(),
                    static_cast<int>(D), p + base * HD + h * D, static_cast<int>(HD), 0.0f,
                    bd.data(), static_cast<int>(width));
        parallel_for(rows, std::max<int64_t>(1, kGrain / T2), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            float* sr = ac.data() + r * T2;
            const float* br = bd.data() + r * width + (rows - 1 - r);
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < T2; ++j) {
              sr[j] = (sr[j] + br[j]) / sqrt_d;
              mx = std::max(mx, sr[j]);
            }
            float sum = 0.f;
            for (int64_t j = 0; j < T2; ++j) {
              sr[j] = std::exp(sr[j] - mx);
              sum += sr[j];
            }
            for (int64_t j = 0; j < T2; ++j) sr[j] /= sum;
          }
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                    static_cast<int>(D), static_cast<int>(T2), 1.0f, ac.data(),
                    static_cast<int>(T2), vb, static_cast<int>(HD), 0.0f,
                    out + (b * T1 + i0) * HD + h * D, static_cast<int>(HD));
      }
    }
  }
}

void timestep_embedding(const float* t, int64_t B, int64_t dim, float scale, float max_period,
                        float* out) {
  const int64_t half = dim / 2;
  const float neg_log = -std::log(max_period);
  for (int64_t b = 0; b < B; ++b) {
    const float tb = t[b] * scale;
    float* o = out + b * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float f = std::exp(static_cast<float>(i) * neg_log / static_cast<float>(half));
      const float a = tb * f;
      o[i] = std::cos(a);
      o[half + i] = std::sin(a);
    }
  }
}

void modulated_layer_norm(const float* x, int64_t B, int64_t T, int64_t C, const float* shift,
                          const float* scale, float eps, float* y) {
  parallel_for(
      B * T, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t b = r / T;
          const float* xr = x + r * C;
          float* yr = y + r * C;
          double sum = 0, sq = 0;
          for (int64_t c = 0; c < C; ++c) sum += xr[c];
          const double mean = sum / static_cast<double>(C);
          for (int64_t c = 0; c < C; ++c) {
            const double d = xr[c] - mean;
            sq += d * d;
          }
          const float m = static_cast<float>(mean);
          const float rstd = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(C) + eps));
          const float* sh = shift + b * C;
          const float* sc = scale + b * C;
          for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - m) * rstd * (1.f + sc[c]) + sh[c];
        }
      });
}

void gated_add(float* x, const float* gate, const float* y, int64_t B, int64_t T, int64_t C) {
  parallel_for(B * T, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float* g = gate + (r / T) * C;
                   for (int64_t c = 0; c < C; ++c) x[r * C + c] += g[c] * y[r * C + c];
                 }
               });
}

void l2_normalize(const float* x, int64_t rows, int64_t n, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    double sq = 0;
    for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(x[r * n + i]) * x[r * n + i];
    const float norm = std::max(static_cast<float>(std::sqrt(sq)), eps);
    for (int64_t i = 0; i < n; ++i) y[r * n + i] = x[r * n + i] / norm;
  }
}

void copy_strided(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                  int64_t outer, int64_t inner) {
  parallel_for(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner)),
               [&](int64_t o0, int64_t o1) {
                 for (int64_t o = o0; o < o1; ++o)
                   std::memcpy(dst + o * dst_stride, src + o * src_stride,
                               static_cast<size_t>(inner) * sizeof(float));
               });
}

void frame_noise(uint64_t seed, int64_t channels, int64_t begin, int64_t end, float* out) {
  const int64_t n = end - begin;
  parallel_for(n, 64, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      std::mt19937_64 gen(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(begin + f))));
      for (int64_t c = 0; c < channels; c += 2) {
        const double u1 = static_cast<double>(gen() >> 11) * 0x1.0p-53;
        const double u2 = static_cast<double>(gen() >> 11) * 0x1.0p-53;
        const double r = std::sqrt(-2.0 * std::log(1.0 - u1));
        out[c * n + f] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
        if (c + 1 < channels)
          out[(c + 1) * n + f] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
      }
    }
  });
}

void axpy(float* y, float a, const float* x, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += a * x[i];
  });
}

void repeat_cols(const float* x, int64_t rows, int64_t T, float* y) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, T)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) std::fill(y + r * T, y + (r + 1) * T, x[r]);
               });
}

void counter_normal(uint64_t seed, int64_t offset, int64_t n, float* out) {
  const uint64_t key = rng::mix64(seed);
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      out[i] = rng::counter_normal(key, static_cast<uint64_t>(offset + i));
  });
}

void chunks_last(const float* x, int64_t B, int64_t n, int64_t C, float* out) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < B; ++b) std::copy_n(x + (b * n + i) * C, C, out + (i * B + b) * C);
}

}  // namespace stepaudio::cpu
