#include "backend/cpu/attention_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <cblas.h>

#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {

// Turns one row of raw scores into probabilities in place; entries at and after `n_used` are
// zero afterwards.
void softmax_row(float* s, int64_t n_used, int64_t n_total, float scale, const float* bias) {
  if (n_used <= 0) {
    for (int64_t j = 0; j < n_total; ++j) s[j] = 0;
    return;
  }
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n_used; ++j) {
    s[j] = s[j] * scale + (bias ? bias[j] : 0.0f);
    mx = std::max(mx, s[j]);
  }
  float sum = 0;
  for (int64_t j = 0; j < n_used; ++j) {
    s[j] = std::exp(s[j] - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n_used; ++j) s[j] *= inv;
  for (int64_t j = n_used; j < n_total; ++j) s[j] = 0;
}

// Few queries (decode): one task per (batch, head, query), plain loops over the keys.
void attention_small(const float* q, const float* k, const float* v, const AttentionShape& s,
                     float scale, bool causal, int64_t q_offset, const float* key_bias,
                     float* out) {
  const int64_t H = s.heads, Hkv = s.kv_heads, D = s.head_dim, G = H / Hkv;
  const int64_t tasks = s.batch * s.q_len * H;
  // Each task reads kv_len rows of K and V; small tasks are grouped to amortise the fork.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, s.kv_len * D));
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> p;
    if (p.size() < static_cast<size_t>(s.kv_len)) p.resize(static_cast<size_t>(s.kv_len));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t h = t % H, i = (t / H) % s.q_len, b = t / (H * s.q_len);
      const int64_t kh = h / G;
      const int64_t n_used = causal ? std::min(s.kv_len, q_offset + i + 1) : s.kv_len;
      const float* qr = q + ((b * s.q_len + i) * H + h) * D;
      for (int64_t j = 0; j < n_used; ++j) {
        const float* kr = k + ((b * s.kv_len + j) * Hkv + kh) * D;
        float d = 0;
        for (int64_t c = 0; c < D; ++c) d += qr[c] * kr[c];
        p[j] = d;
      }
      softmax_row(p.data(), n_used, n_used, scale, key_bias ? key_bias + b * s.kv_len : nullptr);
      float* o = out + ((b * s.q_len + i) * H + h) * D;
      for (int64_t c = 0; c < D; ++c) o[c] = 0;
      for (int64_t j = 0; j < n_used; ++j) {
        const float* vr = v + ((b * s.kv_len + j) * Hkv + kh) * D;
        const float pj = p[j];
        for (int64_t c = 0; c < D; ++c) o[c] += pj * vr[c];
      }
    }
  });
}

}  // namespace

void attention(const float* q, const float* k, const float* v, const AttentionShape& s, float scale,
               bool causal, int64_t q_offset, const float* key_bias, float* out) {
  if (s.q_len == 0) return;
  if (s.q_len <= 4 || s.kv_len == 0) {
    attention_small(q, k, v, s, scale, causal, q_offset, key_bias, out);
    return;
  }
  // Many queries: per (batch, head) and block of queries, S = Q K^T and O = P V through sgemm;
  // the strided head layout is handled by the leading dimensions.
  const int64_t H = s.heads, Hkv = s.kv_heads, D = s.head_dim, G = H / Hkv;
  const int64_t QB = 256;
  std::vector<float> scores(static_cast<size_t>(std::min(QB, s.q_len) * s.kv_len));
  for (int64_t b = 0; b < s.batch; ++b) {
    const float* bias = key_bias ? key_bias + b * s.kv_len : nullptr;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kh = h / G;
      const float* kb = k + (b * s.kv_len * Hkv + kh) * D;
      const float* vb = v + (b * s.kv_len * Hkv + kh) * D;
      for (int64_t i0 = 0; i0 < s.q_len; i0 += QB) {
        const int64_t rows = std::min(QB, s.q_len - i0);
        // Keys any query of this block may see.
        const int64_t n_keys =
            causal ? std::clamp<int64_t>(q_offset + i0 + rows, 0, s.kv_len) : s.kv_len;
        const float* qb = q + ((b * s.q_len + i0) * H + h) * D;
        float* ob = out + ((b * s.q_len + i0) * H + h) * D;
        if (n_keys == 0) {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < D; ++c) ob[r * H * D + c] = 0;
          continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                    static_cast<int>(n_keys), static_cast<int>(D), 1.0f, qb,
                    static_cast<int>(H * D), kb, static_cast<int>(Hkv * D), 0.0f, scores.data(),
                    static_cast<int>(n_keys));
        parallel_for(rows, std::max<int64_t>(1, 16384 / n_keys), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t used =
                causal ? std::clamp<int64_t>(q_offset + i0 + r + 1, 0, n_keys) : n_keys;
            softmax_row(scores.data() + r * n_keys, used, n_keys, scale, bias);
          }
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                    static_cast<int>(D), static_cast<int>(n_keys), 1.0f, scores.data(),
                    static_cast<int>(n_keys), vb, static_cast<int>(Hkv * D), 0.0f, ob,
                    static_cast<int>(H * D));
      }
    }
  }
}

}  // namespace stepaudio::cpu
