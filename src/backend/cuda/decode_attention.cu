// Split-K decode attention over the KV cache (one query per sequence, GQA), two kernels:
// - BF16 cache, head dim 64/128: tensor cores. The G query heads of a KV head are the 16 rows
//   (zero-padded) of the A operand, so each K/V element loaded feeds G heads through mma.sync
//   instead of G fp32 FMAs (with G = 7 those FMAs, not the memory, were the limit).
// - otherwise (F32 cache, other head dims): CUDA-core FMAs in fp32, the exact reference path.
// Both write per-split partial softmaxes that a merge kernel combines; everything is
// deterministic (fixed reduction orders, no atomics) so a replayed graph is bit-identical.
#include <cmath>
#include <type_traits>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/decode_kernels.h"
#include "backend/cuda/mma_bf16.cuh"
#include "backend/cuda/pdl.cuh"

namespace stepaudio::cuda {

namespace {

using namespace mma;

// 8 cache elements (16 bytes of BF16, or two float4 of F32) as floats.
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float* f) {
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(u[i] << 16);
    f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void load8(const float* p, float* f) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  const float4 b = *reinterpret_cast<const float4*>(p + 4);
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

constexpr int kKeys = static_cast<int>(kDecodeKeysPerSplit);  // = threads per block
constexpr int kMaxG = static_cast<int>(kDecodeMaxGroup);

// Block (split, KV head g, sequence b): the keys [split * kKeys, +kKeys) below the sequence's
// length, for the G query heads of KV head g. Scores: one key per thread against the G queries
// in shared memory, the whole K row loaded up front (kD / 8 16-byte loads in flight per thread).
// Softmax statistics of all G heads with two barriers. P.V: one head dim per thread over the
// block's keys, V loads unrolled. Writes the unnormalised partial output and (max, sum) per head
// for decode_merge_kernel. kD = 0: head_dim known only at run time.
template <typename C, int kD>
__global__ void __launch_bounds__(kKeys) decode_attention_kernel(DecodeAttentionArgs a) {
  extern __shared__ float sm[];
  const int64_t D = kD > 0 ? kD : a.D, G = a.H / a.Hkv;
  float* qs = sm;          // [G][D]
  float* ps = qs + G * D;  // [G][kKeys]
  __shared__ float red_m[kMaxG][kKeys / 32], red_l[kMaxG][kKeys / 32];
  const int64_t split = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int64_t len = int64_t{a.positions[b]} + 1;
  const int64_t k0 = split * kKeys;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* pml = a.part_ml + ((b * a.H + g * G) * a.splits + split) * 2;
  if (k0 >= len) {  // past this sequence: an empty partial
    if (threadIdx.x < G) {
      pml[threadIdx.x * a.splits * 2] = -INFINITY;
      pml[threadIdx.x * a.splits * 2 + 1] = 0;
    }
    return;
  }
  for (int64_t i = threadIdx.x; i < G * D; i += blockDim.x) qs[i] = a.q[(b * a.H + g * G) * D + i];
  const int64_t row_stride = a.Hkv * D;
  const C* kbase =
      static_cast<const C*>(a.k) + int64_t{a.slots[b]} * a.max_len * row_stride + g * D;
  const C* vbase =
      static_cast<const C*>(a.v) + int64_t{a.slots[b]} * a.max_len * row_stride + g * D;
  const int64_t key = k0 + threadIdx.x;
  const bool valid = key < len;
  float s[kMaxG];
#pragma unroll
  for (int h = 0; h < kMaxG; ++h) s[h] = 0;
  __syncthreads();  // qs
  if (valid) {
    const C* kr = kbase + key * row_stride;
    if constexpr (kD > 0 && std::is_same_v<C, __nv_bfloat16>) {
      // The whole row in flight as packed bf16 (kD / 8 registers of 16 bytes; unpacking per
      // head is a shift or a mask, cheaper than holding kD floats, which would spill).
      uint4 kv[kD / 8];
#pragma unroll
      for (int j = 0; j < kD / 8; ++j) kv[j] = *reinterpret_cast<const uint4*>(kr + 8 * j);
#pragma unroll
      for (int h = 0; h < kMaxG; ++h) {
        if (h < G) {
          const float4* qh = reinterpret_cast<const float4*>(qs + h * kD);
#pragma unroll
          for (int j = 0; j < kD / 8; ++j) {
            const uint32_t u[4] = {kv[j].x, kv[j].y, kv[j].z, kv[j].w};
            const float4 qa = qh[2 * j], qb = qh[2 * j + 1];
            s[h] = fmaf(qa.x, __uint_as_float(u[0] << 16), s[h]);
            s[h] = fmaf(qa.y, __uint_as_float(u[0] & 0xffff0000u), s[h]);
            s[h] = fmaf(qa.z, __uint_as_float(u[1] << 16), s[h]);
            s[h] = fmaf(qa.w, __uint_as_float(u[1] & 0xffff0000u), s[h]);
            s[h] = fmaf(qb.x, __uint_as_float(u[2] << 16), s[h]);
            s[h] = fmaf(qb.y, __uint_as_float(u[2] & 0xffff0000u), s[h]);
            s[h] = fmaf(qb.z, __uint_as_float(u[3] << 16), s[h]);
            s[h] = fmaf(qb.w, __uint_as_float(u[3] & 0xffff0000u), s[h]);
          }
        }
      }
    } else {
      for (int64_t d = 0; d < D; d += 8) {
        float kf[8];
        load8(kr + d, kf);
#pragma unroll
        for (int h = 0; h < kMaxG; ++h)
          if (h < G)
#pragma unroll
            for (int j = 0; j < 8; ++j) s[h] = fmaf(qs[h * D + d + j], kf[j], s[h]);
      }
    }
  }
#pragma unroll
  for (int h = 0; h < kMaxG; ++h) {
    if (h < G) {
      s[h] = valid ? s[h] * a.scale : -INFINITY;
      const float m = warp_max(s[h]);
      if (lane == 0) red_m[h][warp] = m;
    }
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < kMaxG; ++h) {
    if (h < G) {
      float m = red_m[h][0];
#pragma unroll
      for (int w = 1; w < kKeys / 32; ++w) m = fmaxf(m, red_m[h][w]);
      const float p = valid ? __expf(s[h] - m) : 0.0f;
      ps[h * kKeys + threadIdx.x] = p;
      const float l = warp_sum(p);
      if (lane == 0) red_l[h][warp] = l;
    }
  }
  __syncthreads();
  if (threadIdx.x < G) {
    const int h = threadIdx.x;
    float m = red_m[h][0], l = 0;
    for (int w = 0; w < kKeys / 32; ++w) m = fmaxf(m, red_m[h][w]), l += red_l[h][w];
    pml[h * a.splits * 2] = m;
    pml[h * a.splits * 2 + 1] = l;
  }
  const int64_t nk = min(int64_t{kKeys}, len - k0);
  if constexpr (kD > 0) {
    // Thread (key group kg, dim group dg): 8 head dims (one 16-byte load per key) over kPer keys,
    // all loads of a batch in flight at once; the key groups are summed in shared memory.
    constexpr int kDG = kD / 8, kKG = kKeys / kDG, kPer = kKeys / kKG;
    const int dg = threadIdx.x % kDG, kg = threadIdx.x / kDG;
    float o[kMaxG][8];
#pragma unroll
    for (int h = 0; h < kMaxG; ++h)
#pragma unroll
      for (int e = 0; e < 8; ++e) o[h][e] = 0;
#pragma unroll
    for (int u0 = 0; u0 < kPer; u0 += 8) {
      // Eight keys' 16-byte pieces in flight, kept packed until used (registers).
      uint4 vr[8];
      float4 vf[8][2];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int64_t j = kg * kPer + u0 + u;
        const C* src = vbase + (k0 + j) * row_stride + dg * 8;
        if constexpr (std::is_same_v<C, __nv_bfloat16>) {
          vr[u] = j < nk ? *reinterpret_cast<const uint4*>(src) : make_uint4(0, 0, 0, 0);
        } else {
          const float4 z = make_float4(0, 0, 0, 0);
          vf[u][0] = j < nk ? reinterpret_cast<const float4*>(src)[0] : z;
          vf[u][1] = j < nk ? reinterpret_cast<const float4*>(src)[1] : z;
        }
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int j = kg * kPer + u0 + u;
        float v[8];
        if constexpr (std::is_same_v<C, __nv_bfloat16>) {
          const uint32_t w[4] = {vr[u].x, vr[u].y, vr[u].z, vr[u].w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            v[2 * e] = __uint_as_float(w[e] << 16);
            v[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
          }
        } else {
          v[0] = vf[u][0].x, v[1] = vf[u][0].y, v[2] = vf[u][0].z, v[3] = vf[u][0].w;
          v[4] = vf[u][1].x, v[5] = vf[u][1].y, v[6] = vf[u][1].z, v[7] = vf[u][1].w;
        }
#pragma unroll
        for (int h = 0; h < kMaxG; ++h) {
          if (h < G) {
            const float p = ps[h * kKeys + j];
#pragma unroll
            for (int e = 0; e < 8; ++e) o[h][e] = fmaf(p, v[e], o[h][e]);
          }
        }
      }
    }
    float* red_o = ps + G * kKeys;  // [kKG][G][kD]
#pragma unroll
    for (int h = 0; h < kMaxG; ++h)
      if (h < G)
#pragma unroll
        for (int e = 0; e < 8; ++e) red_o[(kg * G + h) * kD + dg * 8 + e] = o[h][e];
    __syncthreads();
    for (int64_t i = threadIdx.x; i < G * kD; i += blockDim.x) {
      const int64_t h = i / kD, d = i % kD;
      float acc = 0;
#pragma unroll
      for (int q = 0; q < kKG; ++q) acc += red_o[(q * G + h) * kD + d];
      a.part_o[(((b * a.H + g * G + h) * a.splits) + split) * kD + d] = acc;
    }
  } else {
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      float o[kMaxG];
#pragma unroll
      for (int h = 0; h < kMaxG; ++h) o[h] = 0;
      const C* vp = vbase + k0 * row_stride + d;
      int64_t j = 0;
      for (; j + 8 <= nk; j += 8) {
        float v[8];
#pragma unroll
        for (int u = 0; u < 8; ++u) v[u] = static_cast<float>(vp[(j + u) * row_stride]);
#pragma unroll
        for (int u = 0; u < 8; ++u)
#pragma unroll
          for (int h = 0; h < kMaxG; ++h)
            if (h < G) o[h] = fmaf(ps[h * kKeys + j + u], v[u], o[h]);
      }
      for (; j < nk; ++j) {
        const float v = static_cast<float>(vp[j * row_stride]);
#pragma unroll
        for (int h = 0; h < kMaxG; ++h)
          if (h < G) o[h] = fmaf(ps[h * kKeys + j], v, o[h]);
      }
      for (int h = 0; h < G; ++h)
        a.part_o[(((b * a.H + g * G + h) * a.splits) + split) * D + d] = o[h];
    }
  }
}

// One block per (sequence, head): combines the splits' partial softmaxes.
__global__ void decode_merge_kernel(DecodeAttentionArgs a) {
  const int64_t bh = blockIdx.x;
  const float* ml = a.part_ml + bh * a.splits * 2;
  const float* po = a.part_o + bh * a.splits * a.D;
  float mx = -INFINITY;
  for (int64_t s = 0; s < a.splits; ++s) mx = fmaxf(mx, ml[2 * s]);
  float l = 0;
  for (int64_t s = 0; s < a.splits; ++s)
    if (ml[2 * s] != -INFINITY) l += ml[2 * s + 1] * expf(ml[2 * s] - mx);
  const float inv = l > 0 ? 1.0f / l : 0.0f;
  for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x) {
    float acc = 0;
    for (int64_t s = 0; s < a.splits; ++s)
      if (ml[2 * s] != -INFINITY) acc = fmaf(po[s * a.D + d], expf(ml[2 * s] - mx), acc);
    a.out[bh * a.D + d] = acc * inv;
  }
}

// ---- Tensor-core path (BF16 cache) ----

constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = 32 * kMmaWarps;
constexpr int kTileKeys = 16 * kMmaWarps;  // keys per shared-memory tile; 16 per warp
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The keys below a sequence's length, capped at the cache capacity so that a bad position can
// never read past its slot.
__device__ __forceinline__ int64_t visible_keys(const DecodeAttentionArgs& a, int64_t b) {
  return min(int64_t{a.positions[b]} + 1, a.max_len);
}

template <int D>
constexpr size_t mma_smem_bytes() {
  return sizeof(__nv_bfloat16) * 2 /*K, V*/ * 2 /*stages*/ * kTileKeys * (D + 8);
}

// Block (split, KV head hk, sequence b). Tiles of 64 keys stream through shared memory with
// cp.async, two stages; warp w takes keys [16 w, 16 w + 16) of every tile with its own online
// softmax (exp2 domain: q carries scale * log2 e) and O [16 x D] in registers. The four warps'
// states are combined through shared memory at the end into one partial per head.
// Fragment layouts as in flash_attention.cu (m16n8k16: lane = 4 * row + t4).
template <int D>
__global__ void __launch_bounds__(kMmaThreads) decode_attention_mma_kernel(DecodeAttentionArgs a) {
  constexpr int kStride = D + 8;  // padded smem row (elements): ldmatrix rows on distinct banks
  constexpr int kTile = kTileKeys * kStride;
  constexpr int kDk = D / 16;      // k-steps of Q K^T
  constexpr int kDn = D / 8;       // n-tiles of O
  constexpr int kOStride = D + 8;  // floats per row of the warps' O in the epilogue
  static_assert(kMmaWarps * 16 * kOStride * sizeof(float) <= mma_smem_bytes<D>());
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* ks = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [2][kTileKeys][kStride]
  __nv_bfloat16* vs = ks + 2 * kTile;                              // [2][kTileKeys][kStride]
  __shared__ float red_m[kMmaWarps][16], red_l[kMmaWarps][16];
  pdl_wait();  // q and this step's K/V row come from the kernel before
  pdl_trigger();

  const int64_t split = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int64_t k0 = split * a.keys_per_split;
  const int64_t len = visible_keys(a, b);
  if (k0 >= len) return;  // past this sequence: the merge does not read this split
  const int64_t G = a.H / a.Hkv;
  const int n_keys = static_cast<int>(min(a.keys_per_split, len - k0));
  const int n_tiles = (n_keys + kTileKeys - 1) / kTileKeys;
  const int64_t row_stride = a.Hkv * D;
  const int64_t base = (int64_t{a.slots[b]} * a.max_len + k0) * row_stride + hk * D;
  const __nv_bfloat16* kg = static_cast<const __nv_bfloat16*>(a.k) + base;
  const __nv_bfloat16* vg = static_cast<const __nv_bfloat16*>(a.v) + base;

  auto issue_tile = [&](int j) {
    constexpr int kChunks = D / 8;  // 16-byte pieces per row
    const int t0 = j * kTileKeys;
    const int valid = min(kTileKeys, n_keys - t0);
    __nv_bfloat16* kd = ks + (j & 1) * kTile;
    __nv_bfloat16* vd = vs + (j & 1) * kTile;
#pragma unroll
    for (int i = threadIdx.x; i < kTileKeys * kChunks; i += kMmaThreads) {
      const int r = i / kChunks, c = i % kChunks;
      const bool ok = r < valid;
      const int64_t off = ok ? int64_t{t0 + r} * row_stride + c * 8 : 0;
      cp_async16(kd + r * kStride + c * 8, kg + off, ok);
      cp_async16(vd + r * kStride + c * 8, vg + off, ok);
    }
    cp_async_commit();
  };
  issue_tile(0);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gr = lane >> 2, t4 = lane & 3;
  // Q as the A operand, straight from global memory while tile 0 is in flight: a[i] holds row
  // gr + 8 (i & 1), columns 2 t4 + 8 (i >> 1) (+1) of the k-step. Rows >= G are zero.
  uint32_t qf[kDk][4];
  {
    const float qs = a.scale * kLog2e;
    const float* qb = a.q + (b * a.H + hk * G) * D;
#pragma unroll
    for (int kk = 0; kk < kDk; ++kk) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = gr + (i & 1) * 8, col = kk * 16 + 2 * t4 + (i >> 1) * 8;
        const float2 v = row < G ? *reinterpret_cast<const float2*>(qb + row * D + col)
                                 : make_float2(0.0f, 0.0f);
        qf[kk][i] = pack_bf16(v.x * qs, v.y * qs);
      }
    }
  }

  float o[kDn][4];
#pragma unroll
  for (int i = 0; i < kDn; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    cp_async_wait_all();
    __syncthreads();  // tile j landed for all; stage (j + 1) & 1 is no longer read
    if (j + 1 < n_tiles) issue_tile(j + 1);
    const __nv_bfloat16* kt = ks + (j & 1) * kTile;
    const __nv_bfloat16* vt = vs + (j & 1) * kTile;

    // S = Q K^T: 16 rows x this warp's 16 keys (s[0]: keys 0-7, s[1]: keys 8-15).
    float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
    for (int kk = 0; kk < kDk; ++kk) {
      uint32_t bf[4];
      const int key = warp * 16 + (lane & 7) + (lane >> 4) * 8;
      ldmatrix_x4(bf, kt + key * kStride + kk * 16 + ((lane >> 3) & 1) * 8);
      mma_bf16(s[0], qf[kk], bf[0], bf[1]);
      mma_bf16(s[1], qf[kk], bf[2], bf[3]);
    }

    // Mask the keys past the length (only the last tile has any), then the online softmax;
    // the four lanes of a quad share a row.
    const int key0 = j * kTileKeys + warp * 16;  // relative to k0
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + n * 8 + 2 * t4 + (e & 1);
        const float v = key < n_keys ? s[n][e] : -INFINITY;
        s[n][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    }
    float mu[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      mu[r] = mx[r] == -INFINITY ? 0.0f : mx[r];  // no visible key yet: keeps exp2 away from NaN
      const float corr = exp2f(m[r] - mu[r]);
      m[r] = mx[r];
      l[r] *= corr;
#pragma unroll
      for (int i = 0; i < kDn; ++i) {
        o[i][2 * r] *= corr;
        o[i][2 * r + 1] *= corr;
      }
    }

    // P in bf16 is the A operand of P V as it stands (the accumulator layout of the two key
    // halves is the A layout of one k-step); the row sums use the rounded values.
    uint32_t pf[4];
    exp2_a_fragment(s[0], s[1], mu, l, pf);
    pv_mma<D, kStride>(o, pf, vt, warp * 16, lane);
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  // Every cp.async group was waited for in the last iteration; once all warps are past their
  // reads of the tiles, the stage buffers hold the warps' O.
  __syncthreads();
  float* red_o = reinterpret_cast<float*>(smem_raw);  // [kMmaWarps][16][kOStride]
#pragma unroll
  for (int i = 0; i < kDn; ++i) {
    float* r0 = red_o + (warp * 16 + gr) * kOStride + i * 8 + 2 * t4;
    *reinterpret_cast<float2*>(r0) = make_float2(o[i][0], o[i][1]);
    *reinterpret_cast<float2*>(r0 + 8 * kOStride) = make_float2(o[i][2], o[i][3]);
  }
  if (t4 == 0) {
    red_m[warp][gr] = m[0];
    red_m[warp][gr + 8] = m[1];
    red_l[warp][gr] = l[0];
    red_l[warp][gr + 8] = l[1];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * (D / 4); i += kMmaThreads) {
    const int r = i / (D / 4), c = (i % (D / 4)) * 4;
    float mr = -INFINITY;
#pragma unroll
    for (int w = 0; w < kMmaWarps; ++w) mr = fmaxf(mr, red_m[w][r]);
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float lr = 0.0f;
#pragma unroll
    for (int w = 0; w < kMmaWarps; ++w) {
      // A warp whose keys were all masked has m = -inf and contributes nothing.
      const float f = red_m[w][r] == -INFINITY ? 0.0f : exp2f(red_m[w][r] - mr);
      const float4 v = *reinterpret_cast<const float4*>(red_o + (w * 16 + r) * kOStride + c);
      acc.x = fmaf(f, v.x, acc.x);
      acc.y = fmaf(f, v.y, acc.y);
      acc.z = fmaf(f, v.z, acc.z);
      acc.w = fmaf(f, v.w, acc.w);
      lr = fmaf(f, red_l[w][r], lr);
    }
    const int64_t ph = (b * a.H + hk * G + r) * a.splits + split;
    *reinterpret_cast<float4*>(a.part_o + ph * D + c) = acc;
    if (c == 0) {
      a.part_ml[2 * ph] = mr;
      a.part_ml[2 * ph + 1] = lr;
    }
  }
}

// One warp per (sequence, head): combines the splits that hold keys (exp2 domain). Lane L owns
// head dims [L * D / 32, +D / 32); each split's weight is computed once, by lane (split % 32),
// and broadcast.
template <int D>
__global__ void decode_merge_mma_kernel(DecodeAttentionArgs a) {
  constexpr int kPer = D / 32;
  pdl_wait();
  pdl_trigger();
  const int lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.x * int64_t{blockDim.x / 32} + (threadIdx.x >> 5);
  if (bh >= a.B * a.H) return;
  const int64_t b = bh / a.H;
  const int64_t len = visible_keys(a, b);
  const int n = len > 0 ? static_cast<int>((len + a.keys_per_split - 1) / a.keys_per_split) : 0;
  const float* ml = a.part_ml + bh * a.splits * 2;
  const float* po = a.part_o + bh * a.splits * D + lane * kPer;
  float mx = -INFINITY;
  for (int s = lane; s < n; s += 32) mx = fmaxf(mx, ml[2 * s]);
  mx = warp_max(mx);
  float acc[kPer] = {};
  float l = 0.0f;
  for (int s0 = 0; s0 < n; s0 += 32) {
    float w = 0.0f;
    if (s0 + lane < n) {
      const float ms = ml[2 * (s0 + lane)];
      w = ms == -INFINITY ? 0.0f : exp2f(ms - mx);
      l = fmaf(w, ml[2 * (s0 + lane) + 1], l);
    }
    const int cnt = min(32, n - s0);
#pragma unroll 4
    for (int j = 0; j < cnt; ++j) {
      const float ws = __shfl_sync(0xffffffffu, w, j);
      const float* src = po + int64_t{s0 + j} * D;
      float v[kPer];
      if constexpr (kPer == 4) {
        const float4 t = *reinterpret_cast<const float4*>(src);
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
      } else {
        const float2 t = *reinterpret_cast<const float2*>(src);
        v[0] = t.x, v[1] = t.y;
      }
#pragma unroll
      for (int e = 0; e < kPer; ++e) acc[e] = fmaf(ws, v[e], acc[e]);
    }
  }
  l = warp_sum(l);
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  float* dst = a.out + bh * D + lane * kPer;
#pragma unroll
  for (int e = 0; e < kPer; ++e) dst[e] = acc[e] * inv;
}

template <int D>
void launch_mma(const DecodeAttentionArgs& a) {
  constexpr size_t smem = mma_smem_bytes<D>();
  // Over 48 KB of dynamic shared memory needs the opt-in (per device, so set on every launch;
  // a host-side call, allowed under the relaxed graph capture).
  cudaFuncSetAttribute(decode_attention_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(smem));
  // Three blocks per SM (the register limit too) need most of the unified L1 as shared memory.
  cudaFuncSetAttribute(decode_attention_mma_kernel<D>,
                       cudaFuncAttributePreferredSharedMemoryCarveout,
                       cudaSharedmemCarveoutMaxShared);
  const dim3 grid(static_cast<unsigned>(a.splits), static_cast<unsigned>(a.Hkv),
                  static_cast<unsigned>(a.B));
  launch_pdl(decode_attention_mma_kernel<D>, grid, dim3(kMmaThreads), smem, a);
  check_launch("decode_attention");
  constexpr int kMergeWarps = 8;
  const int64_t warps = a.B * a.H;
  launch_pdl(decode_merge_mma_kernel<D>,
             dim3(static_cast<unsigned>((warps + kMergeWarps - 1) / kMergeWarps)),
             dim3(32 * kMergeWarps), 0, a);
  check_launch("decode_attention (merge)");
}

void launch_cuda_core(const DecodeAttentionArgs& a) {
  const int64_t G = a.H / a.Hkv;
  // q, p, and for the specialised head dims the key-group partial sums of P.V.
  const int64_t groups = (a.D == 64 || a.D == 128) ? kKeys / (a.D / 8) : 0;
  const size_t smem = sizeof(float) * (G * a.D + G * kKeys + groups * G * a.D);
  dim3 grid(static_cast<unsigned>(a.splits), static_cast<unsigned>(a.Hkv),
            static_cast<unsigned>(a.B));
  auto run = [&](auto tag) {
    using C = decltype(tag);
    switch (a.D) {
      case 64:
        decode_attention_kernel<C, 64><<<grid, kKeys, smem>>>(a);
        break;
      case 128:
        decode_attention_kernel<C, 128><<<grid, kKeys, smem>>>(a);
        break;
      default:
        decode_attention_kernel<C, 0><<<grid, kKeys, smem>>>(a);
    }
  };
  if (a.bf16)
    run(__nv_bfloat16{});
  else
    run(float{});
  check_launch("decode_attention");
  decode_merge_kernel<<<static_cast<unsigned>(a.B * a.H), 128>>>(a);
  check_launch("decode_attention (merge)");
}

}  // namespace

bool decode_attention_uses_mma(bool bf16_cache, int64_t head_dim) {
  return bf16_cache && (head_dim == 64 || head_dim == 128);
}

int64_t decode_keys_per_split(bool bf16_cache, int64_t B, int64_t Hkv, int64_t D, int64_t max_len) {
  if (!decode_attention_uses_mma(bf16_cache, D)) return kDecodeKeysPerSplit;
  // One tile per block while a full-length batch gives fewer than ~1024 blocks (4 per SM on 132
  // SMs, which batch 1-8 needs to spread its few rows over the chip); bigger splits beyond that,
  // fewer partials for the merge, up to 8 tiles.
  int64_t kps = kTileKeys;
  while (kps < 8 * kTileKeys && B * Hkv * ((max_len + 2 * kps - 1) / (2 * kps)) >= 1024) kps *= 2;
  return kps;
}

void launch_decode_attention(const DecodeAttentionArgs& a) {
  if (!decode_attention_uses_mma(a.bf16, a.D)) {
    launch_cuda_core(a);
  } else if (a.D == 64) {
    launch_mma<64>(a);
  } else {
    launch_mma<128>(a);
  }
}

}  // namespace stepaudio::cuda
