// The counter-based normal generator of ops::counter_normal, shared by the CPU kernel and the CUDA
// kernel (compiled by both g++ and nvcc), so both devices evaluate one formula.
#pragma once
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define T2W_HD __host__ __device__ __forceinline__
#else
#define T2W_HD inline
#endif

namespace stepaudio::rng {

T2W_HD uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Standard-normal draw number `counter` of the stream `key` (= mix64(seed)).
T2W_HD float counter_normal(uint64_t key, uint64_t counter) {
  const uint64_t h = mix64(key + ((counter >> 1) + 1) * 0x9E3779B97F4A7C15ull);
  // u1 in (0, 1) keeps the log finite; both uniforms are exact in float (24 bits).
  const float u1 = (static_cast<float>(h >> 40) + 0.5f) * 0x1.0p-24f;
  const float u2 = static_cast<float>((h >> 16) & 0xFFFFFFu) * 0x1.0p-24f;
  const float r = sqrtf(-2.0f * logf(u1));
  const float a = 6.28318530717958647692f * u2;
  return (counter & 1) ? r * sinf(a) : r * cosf(a);
}

}  // namespace stepaudio::rng
