#include "backend/cpu/convert_cpu.h"

#include <cstring>

#include <cpuid.h>
#include <immintrin.h>

#include "core/error.h"

namespace stepaudio::cpu {

namespace {
// F16C is CPUID leaf 1, ECX bit 29. Read it directly: clang 14 does not accept "f16c" in
// __builtin_cpu_supports, and the fuzz build uses clang.
bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
}  // namespace

bool has_avx2() {
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  return ok;
}

namespace {

__attribute__((target("avx2,fma,f16c"))) void bf16_to_f32_avx2(const uint16_t* s, float* d,
                                                               int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_ps(d + i, _mm256_castsi256_ps(w));
  }
  for (; i < n; ++i) d[i] = bf16_to_f32(s[i]);
}

__attribute__((target("avx2,fma,f16c"))) void f16_to_f32_avx2(const uint16_t* s, float* d,
                                                              int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}

}  // namespace

void to_f32(const void* src, DType dt, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  switch (dt) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::BF16:
      if (has_avx2()) return bf16_to_f32_avx2(h, dst, n);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    case DType::F16:
      if (has_avx2()) return f16_to_f32_avx2(h, dst, n);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
      return;
    default:
      fail("cannot convert {} to F32 in a float kernel (expected F32, BF16 or F16)",
           dtype_name(dt));
  }
}

}  // namespace stepaudio::cpu
