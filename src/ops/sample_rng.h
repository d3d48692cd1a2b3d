// The counter-based random numbers of ops::sample_tokens, shared by the CPU and CUDA kernels so
// that both draw the same values: splitmix64's finaliser over (seed, step, index).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define SA_HD __host__ __device__ __forceinline__
#else
#define SA_HD inline
#endif

namespace stepaudio::ops {

SA_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A double in (0, 1): 53 random bits, offset by half a step so that 0 and 1 never occur.
SA_HD double hash_uniform(uint64_t seed, int64_t step, int64_t i) {
  const uint64_t h = mix64(mix64(seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(step + 1)) ^
                           static_cast<uint64_t>(i));
  return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
}

}  // namespace stepaudio::ops
