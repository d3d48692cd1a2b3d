// ops::sample_tokens on the GPU in two launches. prep_kernel spreads each row over kSplits
// blocks: it applies the repetition penalty and temperature while copying the row into the
// workspace z and, for rows that need no filtering (greedy, or plain temperature sampling), takes
// the argmax (of z, or of z + Gumbel noise) of its slice. finish_kernel, one block per row, then
// either merges those partial maxima or, for top-k / top-p rows, finds the thresholds by
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

constexpr int kThreads = 1024;     // finish_kernel: one block per row
constexpr int kPrepThreads = 256;  // prep_kernel: kSplits blocks per row
constexpr int kSplits = 64;        // <= kThreads: finish_kernel merges one partial per thread
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

// f(i, z[i]) for every i < V of the row, the loads of U elements issued before any of their
// calls (the calls hold shared-memory atomics, which would otherwise serialise each load's
// latency: one block reads a whole 158720-entry row).
template <int U, typename F>
__device__ __forceinline__ void for_each(const float* __restrict__ z, int64_t V, F&& f) {
  const int64_t step = int64_t{U} * blockDim.x;
  for (int64_t base = threadIdx.x; base < V; base += step) {
    float v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + int64_t{u} * blockDim.x;
      v[u] = i < V ? z[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + int64_t{u} * blockDim.x;
      if (i < V) f(i, v[u]);
    }
  }
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
    for_each<8>(z, V, [&](int64_t, float v) {
      const uint32_t k = key_of(v);
      if (k < lo || (k & mask) != prefix) return;
      const int bin = (k >> shift) & 0xff;
      if (kMode == 0)
        atomicAdd(&hist[bin], 1ull);
      else
        atomicAdd(&hist[bin], fixed_of(__expf(v - m) * inv_s));
    });
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

// A row needs the whole-row passes of finish_kernel only when it filters by top-k or top-p.
__device__ __forceinline__ bool filtered(const ops::SampleParams& p, int64_t V) {
  const bool greedy = p.greedy || p.temperature <= 0.0f;
  return !greedy && ((p.top_k > 0 && p.top_k < V) || p.top_p < 1.0f);
}

// The key a row's draw maximises: the logit itself (greedy) or logit + Gumbel noise of (seed,
// step, i), as the CPU reference (ops/sample_rng.h) computes it.
__device__ __forceinline__ double draw_key(const ops::SampleParams& p, bool greedy, int64_t step,
                                           int64_t i, float v) {
  if (greedy) return v;
  return static_cast<double>(v) - log(-log(ops::hash_uniform(p.seed, step, i)));
}

// Block (split, row): z = the row after repetition penalty and temperature over the split's
// slice; for unfiltered rows also the slice's best (key, index) into part[row][split].
__global__ void __launch_bounds__(kPrepThreads)
    prep_kernel(const float* __restrict__ logits, int64_t V, const ops::SampleParams* params,
                const uint8_t* __restrict__ presence, const int64_t* steps,
                float* __restrict__ zbuf, ArgMax* __restrict__ part) {
  __shared__ ArgMax am[kPrepThreads / 32];
  const int64_t row = blockIdx.y, split = blockIdx.x;
  const ops::SampleParams p = params[row];
  const int64_t per = (V + kSplits - 1) / kSplits, lo = split * per, hi = min(V, lo + per);
  const float* x = logits + row * V;
  const uint8_t* seen = presence + row * V;
  float* z = zbuf + row * V;
  const bool greedy = p.greedy || p.temperature <= 0.0f;
  const bool keep_best = !filtered(p, V);
  const int64_t step = steps[row];
  const float pen = p.repetition_penalty;
  ArgMax best{0, -1};
  constexpr int U = 4;
  for (int64_t base = lo + threadIdx.x; base < hi; base += int64_t{U} * kPrepThreads) {
    float v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + int64_t{u} * kPrepThreads;
      v[u] = i < hi ? x[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + int64_t{u} * kPrepThreads;
      if (i >= hi) continue;
      float w = v[u];
      if (pen != 1.0f && seen[i]) w = w < 0.0f ? w * pen : w / pen;
      if (!greedy && p.temperature != 1.0f) w = w / p.temperature;
      z[i] = w;
      if (keep_best && w == w && (greedy || w != -INFINITY))
        best = better(best, ArgMax{draw_key(p, greedy, step, i, w), i});
    }
  }
  if (!keep_best) return;
  best = block_argmax(best, am);
  if (threadIdx.x == 0) part[row * kSplits + split] = best;
}

// One block per row: the token id, presence and step updates. Unfiltered rows merge the
// partial maxima of prep_kernel; top-k / top-p rows find their thresholds over z, then draw.
__global__ void __launch_bounds__(kThreads)
    finish_kernel(int64_t V, const ops::SampleParams* params, uint8_t* presence, int64_t* steps,
                  int32_t* ids, const float* __restrict__ zbuf, const ArgMax* part) {
  __shared__ unsigned long long hist[kBins];
  __shared__ ArgMax am[32];
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  const ops::SampleParams p = params[row];
  uint8_t* seen = presence + row * V;
  const float* z = zbuf + row * V;
  const int64_t step = steps[row];
  ArgMax best{0, -1};
  if (!filtered(p, V)) {
    if (threadIdx.x < kSplits) best = part[row * kSplits + threadIdx.x];
    best = block_argmax(best, am);
  } else {
    uint32_t lo = 0;  // keys below are removed
    if (p.top_k > 0 && p.top_k < V) lo = radix_select<0>(z, V, 0, p.top_k, 0, 0, hist);
    if (p.top_p < 1.0f) {
      float mx = -INFINITY;
      for_each<8>(z, V, [&](int64_t, float v) {
        if (key_of(v) >= lo) mx = fmaxf(mx, v);
      });
      mx = warp_max(mx);
      __syncthreads();
      if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
      __syncthreads();
      float m = -INFINITY;
      for (int w = 0; w < kThreads / 32; ++w) m = fmaxf(m, red[w]);
      float s = 0;
      for_each<8>(z, V, [&](int64_t, float v) {
        if (key_of(v) >= lo) s += __expf(v - m);
      });
      s = block_sum(s, red);
      // The target in the same fixed point as the weights: p times their (rounded) total.
      unsigned long long t = 0;
      for_each<8>(z, V, [&](int64_t, float v) {
        if (key_of(v) >= lo) t += fixed_of(__expf(v - m) * (1.0f / s));
      });
      __syncthreads();
      if (threadIdx.x == 0) hist[0] = 0;
      __syncthreads();
      atomicAdd(&hist[0], t);
      __syncthreads();
      const unsigned long long total = hist[0];
      __syncthreads();
      const auto target = static_cast<unsigned long long>(static_cast<double>(p.top_p) *
                                                          static_cast<double>(total));
      lo = radix_select<1>(z, V, lo, target > 0 ? target : 1, m, 1.0f / s, hist);
    }
    for_each<8>(z, V, [&](int64_t i, float v) {
      if (v != v || key_of(v) < lo || v == -INFINITY) return;
      best = better(best, ArgMax{draw_key(p, false, step, i, v), i});
    });
    best = block_argmax(best, am);
  }
  if (threadIdx.x == 0) {
    const int64_t id = best.i < 0 ? 0 : best.i;
    ids[row] = static_cast<int32_t>(id);
    seen[id] = 1;
    steps[row] = step + 1;
  }
}

}  // namespace

// z, then (16-byte aligned) the partial maxima; ArgMax is 16 bytes.
int64_t part_offset(int64_t B, int64_t V) { return (B * V + 3) / 4 * 4; }

int64_t sample_workspace_floats(int64_t B, int64_t V) {
  static_assert(sizeof(ArgMax) == 4 * sizeof(float));
  return part_offset(B, V) + B * kSplits * 4;
}

void launch_sample(const float* logits, int64_t B, int64_t V, const void* params, uint8_t* presence,
                   int64_t* steps, int32_t* ids, float* work) {
  const auto* sp = static_cast<const ops::SampleParams*>(params);
  auto* part = reinterpret_cast<ArgMax*>(work + part_offset(B, V));
  prep_kernel<<<dim3(kSplits, static_cast<unsigned>(B)), kPrepThreads>>>(logits, V, sp, presence,
                                                                         steps, work, part);
  check_launch("sample_tokens (prep)");
  finish_kernel<<<static_cast<unsigned>(B), kThreads>>>(V, sp, presence, steps, ids, work, part);
  check_launch("sample_tokens");
}

}  // namespace stepaudio::cuda
