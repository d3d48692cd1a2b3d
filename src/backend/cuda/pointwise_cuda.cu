// Elementwise and data-movement kernels: activations, broadcast add, RoPE, embedding gather,
// pooling, transpose, dtype conversion. Each mirrors the CPU reference in backend/cpu.
#include <cmath>
#include <initializer_list>
#include <type_traits>

#include "backend/cuda/common_cuda.cuh"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void gelu_kernel(float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * static_cast<float>(M_SQRT1_2)));
}

__global__ void relu_kernel(float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void silu_mul_kernel(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

template <typename T>
__global__ void add_kernel(float* a, int64_t n, const T* b, int64_t nb) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    a[i] += load_f32(b, i % nb);
}

template <typename S, typename D>
__global__ void convert_kernel(const S* x, D* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = load_f32(x, i);
    if constexpr (std::is_same_v<D, float>)
      y[i] = v;
    else if constexpr (std::is_same_v<D, __nv_bfloat16>)
      y[i] = __float2bfloat16_rn(v);
    else
      y[i] = __float2half_rn(v);
  }
}

// Same arithmetic as cpu::rope: inv_freq from a double pow rounded to float, the angle as a float
// product, cos/sin in double of that float angle.
__global__ void rope_kernel(float* x, int64_t L, int64_t heads, int64_t D, int64_t start,
                            double theta) {
  const int64_t half = D / 2;
  const int64_t n = L * heads * half;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = t % half, lh = t / half, l = lh / heads;
    const float p =
        static_cast<float>(pow(theta, static_cast<double>(2 * i) / static_cast<double>(D)));
    const float inv = 1.0f / p;
    const float ang = static_cast<float>(start + l) * inv;
    const float c = static_cast<float>(cos(static_cast<double>(ang)));
    const float s = static_cast<float>(sin(static_cast<double>(ang)));
    float* v = x + lh * D;
    const float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

template <typename T>
__global__ void embedding_kernel(const T* table, int64_t dim, const int32_t* ids, int64_t n,
                                 float* y) {
  const int64_t total = n * dim;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < total;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = t / dim, c = t % dim;
    y[t] = load_f32(table, static_cast<int64_t>(ids[r]) * dim + c);
  }
}

__global__ void avg_pool2_kernel(const float* x, int64_t B, int64_t T, int64_t C, float* y) {
  const int64_t To = T / 2, n = B * To * C;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = t % C, r = t / C, b = r / To, o = r % To;
    const float* a = x + (b * T + 2 * o) * C + c;
    y[t] = (a[0] + a[C]) / 2.0f;
  }
}

// [B, A, C] -> [B, C, A] through a 32x33 shared tile (coalesced both ways, no bank conflicts).
__global__ void transpose_kernel(const float* x, int64_t A, int64_t C, float* y) {
  __shared__ float tile[32][33];
  const int64_t b = blockIdx.z;
  const int64_t a0 = int64_t{blockIdx.y} * 32, c0 = int64_t{blockIdx.x} * 32;
  const float* xb = x + b * A * C;
  float* yb = y + b * A * C;
  for (int r = threadIdx.y; r < 32; r += blockDim.y) {
    const int64_t a = a0 + r, c = c0 + threadIdx.x;
    if (a < A && c < C) tile[r][threadIdx.x] = xb[a * C + c];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += blockDim.y) {
    const int64_t c = c0 + r, a = a0 + threadIdx.x;
    if (a < A && c < C) yb[c * A + a] = tile[threadIdx.x][r];
  }
}

__device__ __forceinline__ float gelu_f(float v) {
  return 0.5f * v * (1.0f + erff(v * static_cast<float>(M_SQRT1_2)));
}
__device__ __forceinline__ void store(float* y, int64_t i, float v) { y[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* y, int64_t i, float v) {
  y[i] = __float2bfloat16_rn(v);
}

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

// y = act(x + b) per row, one block per row (the bias row stays in L1); b may be null. V4:
// n % 4 == 0 and aligned rows, 16-byte loads. split > 0: a row is parts of `split` columns and
// y is part-major ([parts, rows, split]: the fused q|k|v projection split into q, k, v).
template <bool kGelu, bool V4, typename B, typename Y>
__global__ void bias_act_kernel(const float* x, int64_t n, const B* b, Y* y, int64_t split) {
  const int64_t row = blockIdx.x, off = row * n;
  auto f = [&](float v, int64_t i) {
    v += b ? load_f32(b, i) : 0.0f;
    return kGelu ? gelu_f(v) : v;
  };
  auto dst = [&](int64_t i) {
    return split > 0 ? ((i / split) * gridDim.x + row) * split + i % split : off + i;
  };
  if constexpr (V4) {
    const float4* xr = reinterpret_cast<const float4*>(x + off);
    for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x) {
      float4 v = xr[i];
      v.x = f(v.x, 4 * i), v.y = f(v.y, 4 * i + 1), v.z = f(v.z, 4 * i + 2),
      v.w = f(v.w, 4 * i + 3);
      store4(y, dst(4 * i), v);
    }
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) store(y, dst(i), f(x[off + i], i));
  }
}

template <bool V4, typename B>
__global__ void add_residual_kernel(float* x, const float* r, int64_t n, const B* b) {
  const int64_t off = int64_t{blockIdx.x} * n;
  if constexpr (V4) {
    float4* xr = reinterpret_cast<float4*>(x + off);
    const float4* rr = reinterpret_cast<const float4*>(r + off);
    for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x) {
      float4 v = xr[i];
      const float4 a = rr[i];
      v.x += a.x + load_f32(b, 4 * i);
      v.y += a.y + load_f32(b, 4 * i + 1);
      v.z += a.z + load_f32(b, 4 * i + 2);
      v.w += a.w + load_f32(b, 4 * i + 3);
      xr[i] = v;
    }
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) x[off + i] += r[off + i] + load_f32(b, i);
  }
}

bool rows_v4(int64_t n, std::initializer_list<const void*> ps) {
  uintptr_t bits = 0;
  for (const void* p : ps) bits |= reinterpret_cast<uintptr_t>(p);
  return n % 4 == 0 && (bits & 15) == 0;
}

}  // namespace

void launch_bias_act(const float* x, int64_t rows, int64_t n, const void* b, Elem bt, bool gelu,
                     void* y, Elem yt, int64_t split) {
  const bool v4 = rows_v4(n, {x, y}) && split % 4 == 0;
  with_elem(bt, [&](auto tag) {
    using B = decltype(tag);
    auto go = [&](auto* yp) {
      const B* bp = static_cast<const B*>(b);
      const unsigned grid = static_cast<unsigned>(rows);
      if (gelu && v4)
        bias_act_kernel<true, true><<<grid, kThreads>>>(x, n, bp, yp, split);
      else if (gelu)
        bias_act_kernel<true, false><<<grid, kThreads>>>(x, n, bp, yp, split);
      else if (v4)
        bias_act_kernel<false, true><<<grid, kThreads>>>(x, n, bp, yp, split);
      else
        bias_act_kernel<false, false><<<grid, kThreads>>>(x, n, bp, yp, split);
    };
    if (yt == Elem::BF16)
      go(static_cast<__nv_bfloat16*>(y));
    else
      go(static_cast<float*>(y));
  });
  check_launch(gelu ? "bias_gelu" : "bias_cast");
}

void launch_add_residual(float* x, const float* r, int64_t rows, int64_t n, const void* b,
                         Elem bt) {
  const bool v4 = rows_v4(n, {x, r});
  with_elem(bt, [&](auto tag) {
    using B = decltype(tag);
    const B* bp = static_cast<const B*>(b);
    if (v4)
      add_residual_kernel<true><<<static_cast<unsigned>(rows), kThreads>>>(x, r, n, bp);
    else
      add_residual_kernel<false><<<static_cast<unsigned>(rows), kThreads>>>(x, r, n, bp);
  });
  check_launch("add_residual");
}

void launch_gelu(float* x, int64_t n) {
  gelu_kernel<<<grid_for(n, kThreads), kThreads>>>(x, n);
  check_launch("gelu");
}

void launch_relu(float* x, int64_t n) {
  relu_kernel<<<grid_for(n, kThreads), kThreads>>>(x, n);
  check_launch("relu");
}

void launch_silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  silu_mul_kernel<<<grid_for(n, kThreads), kThreads>>>(gate, up, y, n);
  check_launch("silu_mul");
}

void launch_add(float* a, int64_t n, const void* b, Elem bt, int64_t nb) {
  with_elem(bt, [&](auto tag) {
    using T = decltype(tag);
    add_kernel<T><<<grid_for(n, kThreads), kThreads>>>(a, n, static_cast<const T*>(b), nb);
  });
  check_launch("add");
}

void launch_rope(float* x, int64_t L, int64_t heads, int64_t head_dim, int64_t start,
                 double theta) {
  rope_kernel<<<grid_for(L * heads * (head_dim / 2), kThreads), kThreads>>>(x, L, heads, head_dim,
                                                                            start, theta);
  check_launch("rope");
}

void launch_embedding(const void* table, Elem t, int64_t dim, const int32_t* ids, int64_t n,
                      float* y) {
  with_elem(t, [&](auto tag) {
    using T = decltype(tag);
    embedding_kernel<T>
        <<<grid_for(n * dim, kThreads), kThreads>>>(static_cast<const T*>(table), dim, ids, n, y);
  });
  check_launch("embedding");
}

void launch_avg_pool2(const float* x, int64_t B, int64_t T, int64_t C, float* y) {
  avg_pool2_kernel<<<grid_for(B * (T / 2) * C, kThreads), kThreads>>>(x, B, T, C, y);
  check_launch("avg_pool_time");
}

void launch_transpose(const float* x, int64_t B, int64_t A, int64_t C, float* y) {
  dim3 grid(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>((A + 31) / 32),
            static_cast<unsigned>(B));
  transpose_kernel<<<grid, dim3(32, 8)>>>(x, A, C, y);
  check_launch("transpose_last2");
}

void launch_convert(const void* x, Elem xt, void* y, Elem yt, int64_t n) {
  with_elem(xt, [&](auto src) {
    using S = decltype(src);
    with_elem(yt, [&](auto dst) {
      using D = decltype(dst);
      convert_kernel<S, D>
          <<<grid_for(n, kThreads), kThreads>>>(static_cast<const S*>(x), static_cast<D*>(y), n);
    });
  });
  check_launch("convert");
}

}  // namespace stepaudio::cuda
