// Kernels of the batched decode step: embedding gather from device ids, residual add fused with
// RMSNorm, RoPE fused with the KV-cache append, SwiGLU on the fused gate|up rows (the decode
// attention is in decode_attention.cu). Positions and slots are read on the device, so none of
// these needs the host.
#include <cmath>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/decode_kernels.h"
#include "backend/cuda/pdl.cuh"

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
  pdl_wait();  // qkv comes from the product before
  pdl_trigger();
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

__global__ void swiglu_kernel(const float* gu, int64_t B, int64_t I, float* y) {
  const int64_t n = B * I;
  pdl_wait();
  pdl_trigger();
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
    launch_pdl(qkv_rope_append_kernel<__nv_bfloat16>, dim3(grid_for(n, kThreads)), dim3(kThreads),
               0, qkv, B, H, Hkv, D, positions, slots, static_cast<__nv_bfloat16*>(k_cache),
               static_cast<__nv_bfloat16*>(v_cache), max_len, theta, q);
  else
    launch_pdl(qkv_rope_append_kernel<float>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, qkv,
               B, H, Hkv, D, positions, slots, static_cast<float*>(k_cache),
               static_cast<float*>(v_cache), max_len, theta, q);
  check_launch("qkv_rope_append");
}

void launch_swiglu(const float* gu, int64_t B, int64_t I, float* y) {
  launch_pdl(swiglu_kernel, dim3(grid_for(B * I, kThreads)), dim3(kThreads), 0, gu, B, I, y);
  check_launch("swiglu");
}

void launch_advance(int32_t* p, int64_t n) {
  advance_kernel<<<static_cast<unsigned>((n + 255) / 256), 256>>>(p, n);
  check_launch("advance_positions");
}

}  // namespace stepaudio::cuda
