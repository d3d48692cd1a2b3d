// ops::sample_tokens on the GPU: one block per row. Repetition penalty and temperature are
// applied while copying the row into the workspace z; top-k and top-p find their thresholds by
// radix selection over order-preserving 32-bit keys of z (4 passes of 8 bits, exact), top-p
// accumulating probabilities in 40-bit fixed point so that the result does not depend on the
// order of additions; the draw is a Gumbel-max argmax with the same counter-based noise as the
// CPU reference (ops/sample_rng.h).
#include <cmath>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/decode_kernels.h"
#include "ops/sample_params.h"
#include "ops/sample_rng.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kBins = 256;

// Larger floats give larger keys; -inf is the smallest finite-or-not key we meet (NaN is mapped
// below it, so it is never kept nor chosen).
__device__ __forceinline__ uint32_t key_of(float f) {
  if (f != f) return 0;
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Fixed-point weight of a probability (40 fractional bits): sums of up to 2^24 of them fit.
__device__ __forceinline__ unsigned long long fixed_of(float p) {
  return static_cast<unsigned long long>(static_cast<double>(p) * 1099511627776.0);
}

// The key of the element at which a radix descent stops. Mode 0 (top-k): the k-th largest
// key among keys >= lo. Mode 1 (top-p): the smallest key whose strictly-greater mass is below
// `target`, with weights w(z) = exp(z - m) / S for keys >= lo.
template <int kMode>
__device__ uint32_t radix_select(const float* z, int64_t V, uint32_t lo, unsigned long long target,
                                 float m, float inv_s, unsigned long long* hist) {
  uint32_t prefix = 0, mask = 0;
  unsigned long long remaining = target;  // mode 0: rank still to skip; mode 1: mass budget
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < kBins; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      const uint32_t k = key_of(z[i]);
      if (k < lo || (k & mask) != prefix) continue;
      const int bin = (k >> shift) & 0xff;
      if (kMode == 0)
        atomicAdd(&hist[bin], 1ull);
      else
        atomicAdd(&hist[bin], fixed_of(__expf(z[i] - m) * inv_s));
    }
    __syncthreads();
    __shared__ int chosen;
    __shared__ unsigned long long before;
    if (threadIdx.x == 0) {
      unsigned long long acc = 0;
      int pick = -1;
      for (int b = kBins - 1; b >= 0; --b) {
        if (hist[b] == 0) continue;
        if (acc + hist[b] >= remaining) {
          pick = b;
          break;
        }
        acc += hist[b];
        pick = b;  // everything so far is inside the selection; keep the lowest bin seen
      }
      chosen = pick < 0 ? 0 : pick;
      before = acc;
    }
    __syncthreads();
    // Mode 1, the budget never reached: the lowest non-empty bin holds the threshold; its own
    // mass is then counted in `before`, which only matters at the last level.
    const bool reached = before < remaining && (before + hist[chosen] >= remaining);
    if (kMode == 1 && !reached && shift == 0) {
      // all keys >= lo are kept
      __syncthreads();
      return lo;
    }
    remaining -= (kMode == 0 || reached) ? before : before - hist[chosen];
    prefix |= static_cast<uint32_t>(chosen) << shift;
    mask |= 0xffu << shift;
    __syncthreads();
  }
  return prefix;
}

struct ArgMax {
  double v;
  int64_t i;
};
__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}
__device__ ArgMax block_argmax(ArgMax x, ArgMax* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax y{__shfl_xor_sync(0xffffffffu, x.v, o), __shfl_xor_sync(0xffffffffu, x.i, o)};
    x = better(x, y);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = x;
  __syncthreads();
  ArgMax r{0, -1};
  for (int w = 0; w < (blockDim.x + 31) / 32; ++w) r = better(r, scratch[w]);
  return r;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int64_t V, const ops::SampleParams* params,
                  uint8_t* presence, int64_t* steps, int32_t* ids, float* zbuf) {
  __shared__ unsigned long long hist[kBins];
  __shared__ ArgMax am[32];
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  const ops::SampleParams p = params[row];
  const float* x = logits + row * V;
  uint8_t* seen = presence + row * V;
  float* z = zbuf + row * V;
  const bool greedy = p.greedy || p.temperature <= 0.0f;
  const float pen = p.repetition_penalty;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    float v = x[i];
    if (pen != 1.0f && seen[i]) v = v < 0.0f ? v * pen : v / pen;
    if (!greedy && p.temperature != 1.0f) v = v / p.temperature;
    z[i] = v;
  }
  __syncthreads();

  uint32_t lo = 0;  // keys below are removed
  float m = -INFINITY;
  if (!greedy) {
    if (p.top_k > 0 && p.top_k < V) lo = radix_select<0>(z, V, 0, p.top_k, 0, 0, hist);
    if (p.top_p < 1.0f) {
      float mx = -INFINITY;
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
        if (key_of(z[i]) >= lo) mx = fmaxf(mx, z[i]);
      mx = warp_max(mx);
      __syncthreads();
      if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
      __syncthreads();
      m = -INFINITY;
      for (int w = 0; w < kThreads / 32; ++w) m = fmaxf(m, red[w]);
      float s = 0;
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
        if (key_of(z[i]) >= lo) s += __expf(z[i] - m);
      s = block_sum(s, red);
      // The target in the same fixed point as the weights: p times their (rounded) total.
      unsigned long long total = 0;
      {
        unsigned long long t = 0;
        for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
          if (key_of(z[i]) >= lo) t += fixed_of(__expf(z[i] - m) * (1.0f / s));
        __syncthreads();
        if (threadIdx.x == 0) hist[0] = 0;
        __syncthreads();
        atomicAdd(&hist[0], t);
        __syncthreads();
        total = hist[0];
        __syncthreads();
      }
      const auto target = static_cast<unsigned long long>(static_cast<double>(p.top_p) *
                                                          static_cast<double>(total));
      lo = radix_select<1>(z, V, lo, target > 0 ? target : 1, m, 1.0f / s, hist);
    }
  }

  ArgMax best{0, -1};
  const int64_t step = steps[row];
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = z[i];
    if (v != v) continue;
    double keyv;
    if (greedy) {
      keyv = v;
    } else {
      if (key_of(v) < lo || v == -INFINITY) continue;
      keyv = static_cast<double>(v) - log(-log(ops::hash_uniform(p.seed, step, i)));
    }
    best = better(best, ArgMax{keyv, i});
  }
  best = block_argmax(best, am);
  if (threadIdx.x == 0) {
    const int64_t id = best.i < 0 ? 0 : best.i;
    ids[row] = static_cast<int32_t>(id);
    seen[id] = 1;
    steps[row] = step + 1;
  }
}

}  // namespace

void launch_sample(const float* logits, int64_t B, int64_t V, const void* params, uint8_t* presence,
                   int64_t* steps, int32_t* ids, float* z) {
  sample_kernel<<<static_cast<unsigned>(B), kThreads>>>(
      logits, V, static_cast<const ops::SampleParams*>(params), presence, steps, ids, z);
  check_launch("sample_tokens");
}

}  // namespace stepaudio::cuda
