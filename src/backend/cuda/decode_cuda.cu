// Kernels of the batched decode step: embedding gather from device ids, residual add fused with
// RMSNorm, RoPE fused with the KV-cache append, split-K decode attention over a BF16 or F32
// cache (GQA: the query heads of one KV head share every K/V row they load), SwiGLU on the fused
// gate|up rows. Positions and slots are read on the device, so none of these needs the host.
#include <cmath>
#include <type_traits>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/decode_kernels.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void embedding_rows_kernel(const T* table, int64_t rows, int64_t dim, const int32_t* ids,
                                      int64_t n, float* y) {
  const int64_t total = n * dim;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < total;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = t / dim, d = t % dim;
    int64_t id = ids[i];
    if (id < 0 || id >= rows) id = 0;  // cannot be reported without a sync; see decode_ops.h
    y[t] = load_f32(table, id * dim + d);
  }
}

// One block per row. The sum of squares in fp32 (the CPU reference uses double; the difference
// is far below the bf16 tolerances and within 1e-6 relative for fp32).
__global__ void add_rms_norm_kernel(float* x, const float* r, int64_t n, const float* w, float eps,
                                    float* y) {
  __shared__ float scratch[32];
  float* xr = x + blockIdx.x * n;
  const float* rr = r + blockIdx.x * n;
  float* yr = y + blockIdx.x * n;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = xr[i] + rr[i];
    xr[i] = v;
    ss = fmaf(v, v, ss);
  }
  ss = block_sum(ss, scratch);
  const float inv = rsqrtf(ss / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w[i] * (xr[i] * inv);
}

// Same angles as cpu::rope (inv_freq from a double pow rounded to float, the angle a float
// product, cos/sin in double). One thread per (sequence, head of q|k, pair i) plus the v copy.
template <typename C>
__global__ void qkv_rope_append_kernel(const float* qkv, int64_t B, int64_t H, int64_t Hkv,
                                       int64_t D, const int32_t* positions, const int32_t* slots,
                                       C* kc, C* vc, int64_t max_len, double theta, float* q) {
  const int64_t half = D / 2, W = (H + 2 * Hkv) * D;
  const int64_t n_rot = B * (H + Hkv) * half, n_v = B * Hkv * D;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n_rot + n_v;
       t += int64_t{gridDim.x} * blockDim.x) {
    if (t < n_rot) {
      const int64_t i = t % half, bh = t / half, h = bh % (H + Hkv), b = bh / (H + Hkv);
      const int64_t pos = positions[b];
      const float p =
          static_cast<float>(pow(theta, static_cast<double>(2 * i) / static_cast<double>(D)));
      const float ang = static_cast<float>(pos) * (1.0f / p);
      const float c = static_cast<float>(cos(static_cast<double>(ang)));
      const float s = static_cast<float>(sin(static_cast<double>(ang)));
      const float* src = qkv + b * W + h * D;
      const float a = src[i], bb = src[i + half];
      const float lo = a * c - bb * s, hi = bb * c + a * s;
      if (h < H) {
        float* dst = q + (b * H + h) * D;
        dst[i] = lo;
        dst[i + half] = hi;
      } else {
        C* dst = kc + ((slots[b] * max_len + pos) * Hkv + (h - H)) * D;
        dst[i] = static_cast<C>(lo);
        dst[i + half] = static_cast<C>(hi);
      }
    } else {
      const int64_t u = t - n_rot, d = u % D, g = (u / D) % Hkv, b = u / (D * Hkv);
      vc[((slots[b] * max_len + positions[b]) * Hkv + g) * D + d] =
          static_cast<C>(qkv[b * W + (H + Hkv + g) * D + d]);
    }
  }
}

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

__global__ void swiglu_kernel(const float* gu, int64_t B, int64_t I, float* y) {
  const int64_t n = B * I;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = t / I, i = t % I;
    const float g = gu[b * 2 * I + i], u = gu[b * 2 * I + I + i];
    y[t] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void advance_kernel(int32_t* p, int64_t n) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i < n) p[i] += 1;
}

}  // namespace

void launch_embedding_rows(const void* table, Elem t, int64_t rows, int64_t dim, const int32_t* ids,
                           int64_t n, float* y) {
  with_elem(t, [&](auto tag) {
    using T = decltype(tag);
    embedding_rows_kernel<T><<<grid_for(n * dim, kThreads), kThreads>>>(
        static_cast<const T*>(table), rows, dim, ids, n, y);
  });
  check_launch("embedding_rows");
}

void launch_add_rms_norm(float* x, const float* r, int64_t rows, int64_t n, const float* w,
                         float eps, float* y) {
  add_rms_norm_kernel<<<static_cast<unsigned>(rows), 512>>>(x, r, n, w, eps, y);
  check_launch("add_rms_norm");
}

void launch_qkv_rope_append(const float* qkv, int64_t B, int64_t H, int64_t Hkv, int64_t D,
                            const int32_t* positions, const int32_t* slots, void* k_cache,
                            void* v_cache, bool bf16_cache, int64_t max_len, double theta,
                            float* q) {
  const int64_t n = B * (H + Hkv) * (D / 2) + B * Hkv * D;
  if (bf16_cache)
    qkv_rope_append_kernel<__nv_bfloat16><<<grid_for(n, kThreads), kThreads>>>(
        qkv, B, H, Hkv, D, positions, slots, static_cast<__nv_bfloat16*>(k_cache),
        static_cast<__nv_bfloat16*>(v_cache), max_len, theta, q);
  else
    qkv_rope_append_kernel<float><<<grid_for(n, kThreads), kThreads>>>(
        qkv, B, H, Hkv, D, positions, slots, static_cast<float*>(k_cache),
        static_cast<float*>(v_cache), max_len, theta, q);
  check_launch("qkv_rope_append");
}

void launch_decode_attention(const DecodeAttentionArgs& a) {
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

void launch_swiglu(const float* gu, int64_t B, int64_t I, float* y) {
  swiglu_kernel<<<grid_for(B * I, kThreads), kThreads>>>(gu, B, I, y);
  check_launch("swiglu");
}

void launch_advance(int32_t* p, int64_t n) {
  advance_kernel<<<static_cast<unsigned>((n + 255) / 256), 256>>>(p, n);
  check_launch("advance_positions");
}

}  // namespace stepaudio::cuda
