#include "backend/cpu/conv_cpu.h"

#include <algorithm>
#include <vector>

#include <cblas.h>

#include "backend/cpu/convert_cpu.h"
#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {

// Output columns per GEMM: bounds the im2col buffer (C*K x kTile floats) for long signals.
constexpr int64_t kTile = 4096;
constexpr int64_t kGrain = 16384;

// Weights as f32: F32 is used in place, other types are converted into `buf`.
const float* weights_f32(const void* w, DType wt, int64_t offset, int64_t n,
                         std::vector<float>& buf) {
  if (wt == DType::F32) return static_cast<const float*>(w) + offset;
  buf.resize(static_cast<size_t>(n));
  to_f32(static_cast<const char*>(w) + offset * dtype_size(wt), wt, buf.data(), n);
  return buf.data();
}

void fill_bias(const float* bias, int64_t rows, int64_t t, float* y) {
  for (int64_t r = 0; r < rows; ++r) std::fill(y + r * t, y + (r + 1) * t, bias ? bias[r] : 0.f);
}

// Depthwise-style groups (one input channel per group): a direct loop beats im2col + GEMM.
void conv1d_one_channel_groups(const float* x, const float* w, const float* bias,
                               const Conv1dShape& s, float* y) {
  const int64_t per_group = s.c_out / s.groups;
  parallel_for(s.c_out, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, s.t_out * s.k)),
               [&](int64_t c0, int64_t c1) {
                 for (int64_t co = c0; co < c1; ++co) {
                   const float* xr = x + (co / per_group) * s.t_in;
                   const float* wr = w + co * s.k;
                   float* yr = y + co * s.t_out;
                   const float b = bias ? bias[co] : 0.f;
                   for (int64_t t = 0; t < s.t_out; ++t) {
                     const int64_t base = t * s.stride - s.pad_left;
                     float acc = 0.f;
                     for (int64_t k = 0; k < s.k; ++k) {
                       const int64_t src = base + k * s.dilation;
                       if (src >= 0 && src < s.t_in) acc += wr[k] * xr[src];
                     }
                     yr[t] = acc + b;
                   }
                 }
               });
}

}  // namespace

void conv1d(const float* x, const void* w, DType wt, const float* bias, const Conv1dShape& s,
            float* y) {
  if (s.c_out == 0 || s.t_out == 0) return;
  const int64_t cg = s.c_in / s.groups, og = s.c_out / s.groups, ck = cg * s.k;
  std::vector<float> wbuf;
  if (cg == 1) {
    conv1d_one_channel_groups(x, weights_f32(w, wt, 0, s.c_out * s.k, wbuf), bias, s, y);
    return;
  }
  fill_bias(bias, s.c_out, s.t_out, y);
  const int64_t tile = std::min(kTile, s.t_out);
  std::vector<float> col(static_cast<size_t>(ck * tile));
  for (int64_t g = 0; g < s.groups; ++g) {
    const float* wg = weights_f32(w, wt, g * og * ck, og * ck, wbuf);
    const float* xg = x + g * cg * s.t_in;
    for (int64_t t0 = 0; t0 < s.t_out; t0 += tile) {
      const int64_t n = std::min(tile, s.t_out - t0);
      // col [C*K, n]: row (c, k) holds x[c, t*stride - pad + k*dilation] for t in the tile.
      parallel_for(ck, std::max<int64_t>(1, kGrain / n), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = xg + (r / s.k) * s.t_in;
          const int64_t off = (r % s.k) * s.dilation - s.pad_left;
          float* cr = col.data() + r * n;
          for (int64_t i = 0; i < n; ++i) {
            const int64_t src = (t0 + i) * s.stride + off;
            cr[i] = (src >= 0 && src < s.t_in) ? xr[src] : 0.f;
          }
        }
      });
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(og),
                  static_cast<int>(n), static_cast<int>(ck), 1.f, wg, static_cast<int>(ck),
                  col.data(), static_cast<int>(n), 1.f, y + g * og * s.t_out + t0,
                  static_cast<int>(s.t_out));
    }
  }
}

void conv_transpose1d(const float* x, const void* w, DType wt, const float* bias, int64_t c_in,
                      int64_t t_in, int64_t c_out, int64_t k, int64_t stride, int64_t pad,
                      int64_t t_out, float* y) {
  fill_bias(bias, c_out, t_out, y);
  if (t_in == 0 || c_in == 0 || c_out == 0 || t_out == 0) return;
  std::vector<float> wbuf;
  const float* wf = weights_f32(w, wt, 0, c_in * c_out * k, wbuf);
  const int64_t tile = std::min(kTile, t_in), ok = c_out * k;
  std::vector<float> col(static_cast<size_t>(ok * tile));
  for (int64_t t0 = 0; t0 < t_in; t0 += tile) {
    const int64_t n = std::min(tile, t_in - t0);
    // col [C_out*K, n] = W^T (W viewed as [C_in, C_out*K]) @ x[:, tile]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(ok), static_cast<int>(n),
                static_cast<int>(c_in), 1.f, wf, static_cast<int>(ok), x + t0,
                static_cast<int>(t_in), 0.f, col.data(), static_cast<int>(n));
    // Scatter-add per output channel (channels are independent, so threads never collide).
    parallel_for(c_out, std::max<int64_t>(1, kGrain / (k * n)), [&](int64_t c0, int64_t c1) {
      for (int64_t co = c0; co < c1; ++co) {
        float* yr = y + co * t_out;
        for (int64_t kk = 0; kk < k; ++kk) {
          const float* cr = col.data() + (co * k + kk) * n;
          for (int64_t i = 0; i < n; ++i) {
            const int64_t dst = (t0 + i) * stride - pad + kk;
            if (dst >= 0 && dst < t_out) yr[dst] += cr[i];
          }
        }
      }
    });
  }
}

void pad_rows(const float* x, int64_t rows, int64_t t, int64_t left, int64_t right, int mode,
              float* y) {
  const int64_t to = t + left + right;
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, to)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float* xr = x + r * t;
                   float* yr = y + r * to;
                   for (int64_t i = 0; i < to; ++i) {
                     int64_t src = i - left;
                     if (src < 0 || src >= t) {
                       if (mode == 0) {
                         yr[i] = 0.f;
                         continue;
                       }
                       if (mode == 1)
                         src = src < 0 ? -src : 2 * (t - 1) - src;
                       else
                         src = src < 0 ? 0 : t - 1;
                     }
                     yr[i] = xr[src];
                   }
                 }
               });
}

void upsample_nearest(const float* x, int64_t rows, int64_t t, int64_t factor, float* y) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, t * factor)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r)
                   for (int64_t i = 0; i < t; ++i)
                     std::fill_n(y + (r * t + i) * factor, factor, x[r * t + i]);
               });
}

}  // namespace stepaudio::cpu
