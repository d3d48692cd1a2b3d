#include "backend/cpu/linear_cpu.h"

#include <algorithm>
#include <vector>

#include <cblas.h>
#include <immintrin.h>

#include "backend/cpu/convert_cpu.h"
#include "core/dtype.h"
#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {

// Loads 8 weights as f32.
template <DType WT>
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const void* w, int64_t i) {
  if constexpr (WT == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  } else {
    const __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
    if constexpr (WT == DType::BF16)
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else
      return _mm256_cvtph_ps(h);
  }
}

template <DType WT>
inline float load1(const void* w, int64_t i) {
  if constexpr (WT == DType::F32)
    return static_cast<const float*>(w)[i];
  else if constexpr (WT == DType::BF16)
    return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
  else
    return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[m, n] for m < R (R <= 4) and weight rows [n0, n1): every weight row is read once for all R
// activation rows, which is what makes decode bandwidth-bound rather than load-bound.
template <DType WT, int R>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows_avx2(const float* x, int64_t K,
                                                             const void* w, int64_t n0, int64_t n1,
                                                             int64_t ldy, float* y) {
  const size_t esz = dtype_size(WT);
  for (int64_t n = n0; n < n1; ++n) {
    const void* wr = static_cast<const char*>(w) + static_cast<size_t>(n * K) * esz;
    __m256 acc0[R], acc1[R];
    for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m256 w0 = load8<WT>(wr, k), w1 = load8<WT>(wr, k + 8);
      for (int r = 0; r < R; ++r) {
        acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * K + k), acc0[r]);
        acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * K + k + 8), acc1[r]);
      }
    }
    for (; k + 8 <= K; k += 8) {
      const __m256 w0 = load8<WT>(wr, k);
      for (int r = 0; r < R; ++r)
        acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * K + k), acc0[r]);
    }
    for (int r = 0; r < R; ++r) {
      float s = hsum(_mm256_add_ps(acc0[r], acc1[r]));
      for (int64_t kk = k; kk < K; ++kk) s += load1<WT>(wr, kk) * x[r * K + kk];
      y[r * ldy + n] = s;
    }
  }
}

template <DType WT>
void gemv_rows_scalar(const float* x, int64_t R, int64_t K, const void* w, int64_t n0, int64_t n1,
                      int64_t ldy, float* y) {
  for (int64_t n = n0; n < n1; ++n) {
    const void* wr = static_cast<const char*>(w) + static_cast<size_t>(n * K) * dtype_size(WT);
    for (int64_t r = 0; r < R; ++r) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += load1<WT>(wr, k) * x[r * K + k];
      y[r * ldy + n] = s;
    }
  }
}

template <DType WT>
void gemv(const float* x, int64_t M, int64_t K, const void* w, int64_t N, float* y) {
  // ~32 KB of weights per task keeps the threads busy without much scheduling overhead.
  const int64_t grain = std::max<int64_t>(16, 32768 / std::max<int64_t>(1, K * 2));
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    if (!has_avx2()) return gemv_rows_scalar<WT>(x, M, K, w, n0, n1, N, y);
    switch (M) {
      case 1:
        return gemv_rows_avx2<WT, 1>(x, K, w, n0, n1, N, y);
      case 2:
        return gemv_rows_avx2<WT, 2>(x, K, w, n0, n1, N, y);
      case 3:
        return gemv_rows_avx2<WT, 3>(x, K, w, n0, n1, N, y);
      default:
        return gemv_rows_avx2<WT, 4>(x, K, w, n0, n1, N, y);
    }
  });
}

// Reused between calls: the weight blocks are converted into this buffer, one block at a time.
std::vector<float>& block_buffer() {
  thread_local std::vector<float> buf;
  return buf;
}

}  // namespace

void linear(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
            const float* bias, float* y) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] = 0;
  } else if (wt == DType::F32 && M > kGemvMaxRows) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), 1.0f, x, static_cast<int>(K), static_cast<const float*>(w),
                static_cast<int>(K), 0.0f, y, static_cast<int>(N));
  } else if (M <= kGemvMaxRows) {
    for (int64_t m0 = 0; m0 < M; m0 += 4) {
      const int64_t r = std::min<int64_t>(4, M - m0);
      switch (wt) {
        case DType::F32:
          gemv<DType::F32>(x + m0 * K, r, K, w, N, y + m0 * N);
          break;
        case DType::BF16:
          gemv<DType::BF16>(x + m0 * K, r, K, w, N, y + m0 * N);
          break;
        default:
          gemv<DType::F16>(x + m0 * K, r, K, w, N, y + m0 * N);
          break;
      }
    }
  } else {
    // Blocks of ~16 MB of f32 weights: large enough for sgemm to run at full speed.
    const int64_t nb = std::clamp<int64_t>((int64_t{4} << 20) / K / 16 * 16, 16, N);
    std::vector<float>& buf = block_buffer();
    if (buf.size() < static_cast<size_t>(nb * K)) buf.resize(static_cast<size_t>(nb * K));
    const size_t esz = dtype_size(wt);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      const int64_t rows = std::min(nb, N - n0);
      const char* src = static_cast<const char*>(w) + static_cast<size_t>(n0 * K) * esz;
      parallel_for(rows, std::max<int64_t>(1, 65536 / K), [&](int64_t r0, int64_t r1) {
        to_f32(src + static_cast<size_t>(r0 * K) * esz, wt, buf.data() + r0 * K, (r1 - r0) * K);
      });
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M),
                  static_cast<int>(rows), static_cast<int>(K), 1.0f, x, static_cast<int>(K),
                  buf.data(), static_cast<int>(K), 0.0f, y + n0, static_cast<int>(N));
    }
  }
  if (bias) {
    parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t n = 0; n < N; ++n) y[m * N + n] += bias[n];
    });
  }
}

}  // namespace stepaudio::cpu
