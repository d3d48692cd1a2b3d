// RMSNorm and LayerNorm: one block per row, fp32 sums, the weight read in its stored type.
#include "backend/cuda/common_cuda.cuh"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

template <typename W>
__global__ void rms_norm_kernel(const float* x, int64_t n, const W* w, float eps, float* y) {
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * n;
  float* yr = y + blockIdx.x * n;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, scratch);
  const float inv = rsqrtf(ss / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = load_f32(w, i) * (xr[i] * inv);
}

template <typename W>
__global__ void layer_norm_kernel(const float* x, int64_t n, const W* w, const W* b, float eps,
                                  float* y) {
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * n;
  float* yr = y + blockIdx.x * n;
  float s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, scratch) / static_cast<float>(n);
  float v = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
  const float var = block_sum(v, scratch) / static_cast<float>(n);
  const float inv = 1.0f / sqrtf(var + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    yr[i] = (xr[i] - mean) * inv * load_f32(w, i) + load_f32(b, i);
}

__device__ __forceinline__ void store(float* y, int64_t i, float v) { y[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* y, int64_t i, float v) {
  y[i] = __float2bfloat16_rn(v);
}

// The residual add (x + (r + rb), the order of a linear with bias then the add) and LayerNorm of
// the result in one pass over the row; the row is re-read from L1/L2, not HBM.
template <typename W, typename RB, typename Y>
__global__ void add_layer_norm_kernel(const float* x, float* x_out, const float* r, const RB* rb,
                                      int64_t n, const W* w, const W* b, float eps, Y* y) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * n;
  Y* yr = y + row * n;
  float s = 0;
  if (r) {
    const float* rr = r + row * n;
    float* xo = x_out + row * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = xr[i] + (rb ? rr[i] + load_f32(rb, i) : rr[i]);
      xo[i] = v;  // each thread re-reads only the elements it wrote
      s += v;
    }
    xr = xo;
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i];
  }
  const float mean = block_sum(s, scratch) / static_cast<float>(n);
  float v = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
  const float var = block_sum(v, scratch) / static_cast<float>(n);
  const float inv = 1.0f / sqrtf(var + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    store(yr, i, (xr[i] - mean) * inv * load_f32(w, i) + load_f32(b, i));
}

// The same for rows of n <= 32 * 4 * kVec with n % 4 == 0 (the encoder's 1280): one warp per
// row, the row in registers as float4s, so no block barriers and one read of each input.
constexpr int kVec = 16;
constexpr int kRowsPerBlock = 4;

__device__ __forceinline__ void store4(float* y, int64_t i, float4 v) {
  *reinterpret_cast<float4*>(y + i) = v;
}
__device__ __forceinline__ void store4(__nv_bfloat16* y, int64_t i, float4 v) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 u;
  u.x = *reinterpret_cast<uint32_t*>(&lo);
  u.y = *reinterpret_cast<uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(y + i) = u;
}

template <typename W, typename RB, typename Y>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    add_layer_norm_warp_kernel(const float* x, float* x_out, const float* r, const RB* rb,
                               int64_t rows, int64_t n, const W* w, const W* b, float eps, Y* y) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t{blockIdx.x} * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;  // warp-uniform
  const float4* xr = reinterpret_cast<const float4*>(x + row * n);
  const float4* rr = r ? reinterpret_cast<const float4*>(r + row * n) : nullptr;
  const int64_t n4 = n / 4;
  float4 v[kVec];
  float s = 0;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const int64_t i = j * 32 + lane;
    v[j] = make_float4(0, 0, 0, 0);
    if (i < n4) {
      v[j] = xr[i];
      if (rr) {
        float4 a = rr[i];
        if (rb) {
          a.x += load_f32(rb, 4 * i);
          a.y += load_f32(rb, 4 * i + 1);
          a.z += load_f32(rb, 4 * i + 2);
          a.w += load_f32(rb, 4 * i + 3);
        }
        v[j].x += a.x, v[j].y += a.y, v[j].z += a.z, v[j].w += a.w;
        reinterpret_cast<float4*>(x_out + row * n)[i] = v[j];
      }
      s += (v[j].x + v[j].y) + (v[j].z + v[j].w);
    }
  }
  const float mean = warp_sum(s) / static_cast<float>(n);
  float q = 0;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    if (j * 32 + lane < n4) {
      const float a = v[j].x - mean, c = v[j].y - mean, d = v[j].z - mean, e = v[j].w - mean;
      q += (a * a + c * c) + (d * d + e * e);
    }
  }
  const float inv = 1.0f / sqrtf(warp_sum(q) / static_cast<float>(n) + eps);
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const int64_t i = j * 32 + lane;
    if (i < n4) {
      const int64_t e = 4 * i;
      float4 o;
      o.x = (v[j].x - mean) * inv * load_f32(w, e) + load_f32(b, e);
      o.y = (v[j].y - mean) * inv * load_f32(w, e + 1) + load_f32(b, e + 1);
      o.z = (v[j].z - mean) * inv * load_f32(w, e + 2) + load_f32(b, e + 2);
      o.w = (v[j].w - mean) * inv * load_f32(w, e + 3) + load_f32(b, e + 3);
      store4(y + row * n, e, o);
    }
  }
}

}  // namespace

void launch_add_layer_norm(const float* x, float* x_out, const float* r, const void* rb, Elem rbt,
                           int64_t rows, int64_t n, const void* w, const void* b, Elem wt,
                           float eps, void* y, Elem yt) {
  with_elem(wt, [&](auto wtag) {
    using W = decltype(wtag);
    with_elem(rbt, [&](auto rbtag) {
      using RB = decltype(rbtag);
      // float4 access needs every row start 16-byte aligned.
      const bool aligned = ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(x_out) |
                             reinterpret_cast<uintptr_t>(r) | reinterpret_cast<uintptr_t>(y)) &
                            15) == 0;
      const bool warp_rows = n % 4 == 0 && n <= 128 * kVec && aligned;
      auto go = [&](auto* yp) {
        if (warp_rows)
          add_layer_norm_warp_kernel<W, RB>
              <<<static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock),
                 32 * kRowsPerBlock>>>(x, x_out, r, static_cast<const RB*>(rb), rows, n,
                                       static_cast<const W*>(w), static_cast<const W*>(b), eps, yp);
        else
          add_layer_norm_kernel<W, RB><<<static_cast<unsigned>(rows), kThreads>>>(
              x, x_out, r, static_cast<const RB*>(rb), n, static_cast<const W*>(w),
              static_cast<const W*>(b), eps, yp);
      };
      if (yt == Elem::BF16)
        go(static_cast<__nv_bfloat16*>(y));
      else
        go(static_cast<float*>(y));
    });
  });
  check_launch("add_layer_norm");
}

void launch_rms_norm(const float* x, int64_t rows, int64_t n, const void* w, Elem wt, float eps,
                     float* y) {
  with_elem(wt, [&](auto tag) {
    using W = decltype(tag);
    rms_norm_kernel<W>
        <<<static_cast<unsigned>(rows), kThreads>>>(x, n, static_cast<const W*>(w), eps, y);
  });
  check_launch("rms_norm");
}

void launch_layer_norm(const float* x, int64_t rows, int64_t n, const void* w, const void* b,
                       Elem wt, float eps, float* y) {
  with_elem(wt, [&](auto tag) {
    using W = decltype(tag);
    layer_norm_kernel<W><<<static_cast<unsigned>(rows), kThreads>>>(
        x, n, static_cast<const W*>(w), static_cast<const W*>(b), eps, y);
  });
  check_launch("layer_norm");
}

}  // namespace stepaudio::cuda
