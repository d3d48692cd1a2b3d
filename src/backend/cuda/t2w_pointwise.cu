// Pointwise and copy kernels of token2wav (activations, Snake, gated residuals, padding,
// up-sampling, strided copies). Float32 throughout, one thread per element in grid-stride loops.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cpu/counter_rng.h"
#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/t2w_kernels.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

template <T2wAct A>
__device__ __forceinline__ float act(float v, float p) {
  if constexpr (A == T2wAct::LeakyRelu) return v >= 0.f ? v : v * p;
  if constexpr (A == T2wAct::Elu) return v > 0.f ? v : p * expm1f(v);
  if constexpr (A == T2wAct::Silu) return v / (1.f + expf(-v));
  if constexpr (A == T2wAct::Mish) {
    // tanh(softplus(v)) = m / (m + 2), m = e^v (e^v + 2), as the CPU reference.
    if (v > 20.f) return v;
    const float e = expf(v), m = e * (e + 2.f);
    return v * m / (m + 2.f);
  }
  if constexpr (A == T2wAct::Tanh) return tanhf(v);
  if constexpr (A == T2wAct::GeluTanh) {
    constexpr float k = 0.7978845608028654f;
    const float z = k * (v + 0.044715f * v * v * v);
    return 0.5f * v * (2.f - 2.f / (expf(2.f * z) + 1.f));
  }
  if constexpr (A == T2wAct::Exp) return expf(v);
  if constexpr (A == T2wAct::Sin) return sinf(v);
  if constexpr (A == T2wAct::Scale) return v * p;
  if constexpr (A == T2wAct::Abs) return fabsf(v);
  return v;
}

template <T2wAct A>
__global__ void act_kernel(float* x, int64_t n, float p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] = act<A>(x[i], p);
}

// The same with float4 accesses (x 16-byte aligned): n4 vectors, then `tail` (< 4) scalars.
template <T2wAct A>
__global__ void act4_kernel(float* x, int64_t n4, int tail, float p) {
  float4* x4 = reinterpret_cast<float4*>(x);
  const int64_t i0 = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  for (int64_t i = i0; i < n4; i += int64_t{gridDim.x} * blockDim.x) {
    const float4 v = x4[i];
    x4[i] = make_float4(act<A>(v.x, p), act<A>(v.y, p), act<A>(v.z, p), act<A>(v.w, p));
  }
  if (i0 < tail) x[4 * n4 + i0] = act<A>(x[4 * n4 + i0], p);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <T2wAct A>
void run_act(float* x, int64_t n, float p) {
  if (aligned16(x)) {
    const int64_t n4 = n / 4;
    act4_kernel<A>
        <<<grid_for(n4 > 0 ? n4 : 1, kThreads), kThreads>>>(x, n4, static_cast<int>(n % 4), p);
    return;
  }
  act_kernel<A><<<grid_for(n, kThreads), kThreads>>>(x, n, p);
}

__global__ void clamp_kernel(float* x, int64_t n, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] = fminf(fmaxf(x[i], lo), hi);
}

__global__ void mul_kernel(float* a, const float* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    a[i] *= b[i];
}

__global__ void axpy_kernel(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));  // the CPU's y + a*x, not fused
}

// One Snake value; both kernels use it, so they round alike.
__device__ __forceinline__ float snake1(float v, float a, float inv) {
  const float s = sinf(a * v);
  return v + inv * s * s;
}

__global__ void snake_kernel(float* x, const float* alpha, int64_t C, int64_t T, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float a = alpha[(i / T) % C];
    x[i] = snake1(x[i], a, 1.f / (a + 1e-9f));
  }
}

// Row blockIdx.y of x [rows, 4*T4] (16-byte aligned rows), float4 along time: alpha and its
// reciprocal once per thread instead of a 64-bit division per element.
__global__ void snake4_kernel(float* x, const float* alpha, int64_t C, int64_t T4) {
  const int64_t r = blockIdx.y;
  const float a = alpha[r % C], inv = 1.f / (a + 1e-9f);
  float4* xr = reinterpret_cast<float4*>(x) + r * T4;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < T4;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float4 v = xr[i];
    xr[i] = make_float4(snake1(v.x, a, inv), snake1(v.y, a, inv), snake1(v.z, a, inv),
                        snake1(v.w, a, inv));
  }
}

__device__ __forceinline__ float gated1(float x, float g, float y) {
  return __fadd_rn(x, __fmul_rn(g, y));
}

__global__ void gated_add_kernel(float* x, const float* gate, const float* y, int64_t T, int64_t C,
                                 int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = i / (T * C), c = i % C;
    x[i] = gated1(x[i], gate[b * C + c], y[i]);
  }
}

// Rows of x [B*T, 4*C4] (16-byte aligned, as gate and y), float4: one division per row.
__global__ void gated_add4_kernel(float* x, const float* gate, const float* y, int64_t rows,
                                  int64_t T, int64_t C4) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float4* xr = reinterpret_cast<float4*>(x) + r * C4;
    const float4* yr = reinterpret_cast<const float4*>(y) + r * C4;
    const float4* g = reinterpret_cast<const float4*>(gate) + (r / T) * C4;
    for (int64_t c = threadIdx.x; c < C4; c += blockDim.x) {
      const float4 v = xr[c], gv = g[c], a = yr[c];
      xr[c] = make_float4(gated1(v.x, gv.x, a.x), gated1(v.y, gv.y, a.y), gated1(v.z, gv.z, a.z),
                          gated1(v.w, gv.w, a.w));
    }
  }
}

__global__ void repeat_cols_kernel(const float* x, int64_t T, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = x[i / T];
}

__global__ void hamming_kernel(const float* head, const float* tail, int64_t n, float* y) {
  const double m = static_cast<double>(2 * n - 1);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const double wa = 0.54 - 0.46 * cos(kTwoPi * static_cast<double>(i) / m);
    const double wb = 0.54 - 0.46 * cos(kTwoPi * static_cast<double>(n + i) / m);
    y[i] =
        static_cast<float>(static_cast<double>(head[i]) * wa + static_cast<double>(tail[i]) * wb);
  }
}

__global__ void pad_rows_kernel(const float* x, int64_t t, int64_t left, int64_t to, int mode,
                                float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / to, c = i % to;
    int64_t src = c - left;
    if (src < 0 || src >= t) {
      if (mode == 0) {
        y[i] = 0.f;
        continue;
      }
      if (mode == 1)
        src = src < 0 ? -src : 2 * (t - 1) - src;
      else
        src = src < 0 ? 0 : t - 1;
    }
    y[i] = x[r * t + src];
  }
}

__global__ void upsample_kernel(const float* x, int64_t factor, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = x[i / factor];
}

__global__ void add_bias_rows_kernel(float* y, int64_t C, int64_t T, const float* bias, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] += bias[(i / T) % C];
}

// Row blockIdx.y of y [rows = B*C, 4*T4] (16-byte aligned rows) += bias[row % C], float4.
__global__ void add_bias_rows4_kernel(float* y, int64_t C, int64_t T4, const float* bias) {
  const int64_t r = blockIdx.y;
  const float bv = bias[r % C];
  float4* yr = reinterpret_cast<float4*>(y) + r * T4;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < T4;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float4 v = yr[i];
    yr[i] = make_float4(v.x + bv, v.y + bv, v.z + bv, v.w + bv);
  }
}

// Row blockIdx.y: dst[o * ds4 + j] = src[o * ss4 + j], j < inner4, in float4 units.
__global__ void copy_strided4_kernel(const float4* src, int64_t ss4, float4* dst, int64_t ds4,
                                     int64_t inner4) {
  const int64_t o = blockIdx.y;
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < inner4;
       j += int64_t{gridDim.x} * blockDim.x)
    dst[o * ds4 + j] = src[o * ss4 + j];
}

// The grid of the row kernels above: x over a row's float4s, y over the rows.
dim3 row_grid(int64_t rows, int64_t per_row4) {
  return dim3(
      static_cast<unsigned>(std::clamp<int64_t>((per_row4 + kThreads - 1) / kThreads, 1, 4096)),
      static_cast<unsigned>(rows));
}

__global__ void copy_strided_kernel(const float* src, int64_t ss, float* dst, int64_t ds,
                                    int64_t inner, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i / inner, j = i % inner;
    dst[o * ds + j] = src[o * ss + j];
  }
}

// x [B, n*C] -> y [n, B, C]: element (b, j, c) of x to (j, b, c).
__global__ void chunks_last_kernel(const float* x, int64_t B, int64_t n, int64_t C, float* y,
                                   int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = i % C, r = i / C, b = r / n, j = r % n;
    y[(j * B + b) * C + c] = x[i];
  }
}

__global__ void counter_normal_kernel(uint64_t key, int64_t offset, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = rng::counter_normal(key, static_cast<uint64_t>(offset + i));
}

}  // namespace

void launch_t2w_chunks_last(const float* x, int64_t B, int64_t n, int64_t C, float* y) {
  const int64_t total = B * n * C;
  if (total <= 0) return;
  chunks_last_kernel<<<grid_for(total, kThreads), kThreads>>>(x, B, n, C, y, total);
  check_launch("chunks_last");
}

void launch_t2w_counter_normal(uint64_t seed, int64_t offset, int64_t n, float* out) {
  if (n <= 0) return;
  counter_normal_kernel<<<grid_for(n, kThreads), kThreads>>>(rng::mix64(seed), offset, n, out);
  check_launch("counter normal");
}

void launch_t2w_act(T2wAct a, float* x, int64_t n, float p) {
  if (n <= 0) return;
  switch (a) {
    case T2wAct::LeakyRelu:
      run_act<T2wAct::LeakyRelu>(x, n, p);
      break;
    case T2wAct::Elu:
      run_act<T2wAct::Elu>(x, n, p);
      break;
    case T2wAct::Silu:
      run_act<T2wAct::Silu>(x, n, p);
      break;
    case T2wAct::Mish:
      run_act<T2wAct::Mish>(x, n, p);
      break;
    case T2wAct::Tanh:
      run_act<T2wAct::Tanh>(x, n, p);
      break;
    case T2wAct::GeluTanh:
      run_act<T2wAct::GeluTanh>(x, n, p);
      break;
    case T2wAct::Exp:
      run_act<T2wAct::Exp>(x, n, p);
      break;
    case T2wAct::Sin:
      run_act<T2wAct::Sin>(x, n, p);
      break;
    case T2wAct::Scale:
      run_act<T2wAct::Scale>(x, n, p);
      break;
    case T2wAct::Abs:
      run_act<T2wAct::Abs>(x, n, p);
      break;
  }
  check_launch("t2w activation");
}

void launch_t2w_clamp(float* x, int64_t n, float lo, float hi) {
  if (n <= 0) return;
  clamp_kernel<<<grid_for(n, kThreads), kThreads>>>(x, n, lo, hi);
  check_launch("clamp");
}

void launch_t2w_mul(float* a, const float* b, int64_t n) {
  if (n <= 0) return;
  mul_kernel<<<grid_for(n, kThreads), kThreads>>>(a, b, n);
  check_launch("mul");
}

void launch_t2w_axpy(float* y, float a, const float* x, int64_t n) {
  if (n <= 0) return;
  axpy_kernel<<<grid_for(n, kThreads), kThreads>>>(y, a, x, n);
  check_launch("axpy");
}

void launch_t2w_snake(float* x, const float* alpha, int64_t B, int64_t C, int64_t T) {
  const int64_t n = B * C * T;
  if (n <= 0) return;
  const int64_t rows = B * C;
  if (T % 4 == 0 && aligned16(x) && rows <= 65535) {
    const int64_t T4 = T / 4;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>((T4 + kThreads - 1) / kThreads, 4096)),
                    static_cast<unsigned>(rows));
    snake4_kernel<<<grid, kThreads>>>(x, alpha, C, T4);
    check_launch("snake");
    return;
  }
  snake_kernel<<<grid_for(n, kThreads), kThreads>>>(x, alpha, C, T, n);
  check_launch("snake");
}

void launch_t2w_gated_add(float* x, const float* gate, const float* y, int64_t B, int64_t T,
                          int64_t C) {
  const int64_t n = B * T * C;
  if (n <= 0) return;
  if (C % 4 == 0 && aligned16(x) && aligned16(gate) && aligned16(y)) {
    const int64_t rows = B * T, C4 = C / 4;
    const int threads = C4 >= 256 ? 256 : C4 > 64 ? 128 : 64;
    gated_add4_kernel<<<static_cast<unsigned>(std::min<int64_t>(rows, int64_t{1} << 20)),
                        threads>>>(x, gate, y, rows, T, C4);
    check_launch("gated_add");
    return;
  }
  gated_add_kernel<<<grid_for(n, kThreads), kThreads>>>(x, gate, y, T, C, n);
  check_launch("gated_add");
}

void launch_t2w_repeat_cols(const float* x, int64_t rows, int64_t T, float* y) {
  const int64_t n = rows * T;
  if (n <= 0) return;
  repeat_cols_kernel<<<grid_for(n, kThreads), kThreads>>>(x, T, y, n);
  check_launch("repeat_time");
}

void launch_t2w_hamming_crossfade(const float* head, const float* tail, int64_t n, float* y) {
  if (n <= 0) return;
  hamming_kernel<<<grid_for(n, kThreads), kThreads>>>(head, tail, n, y);
  check_launch("hamming_crossfade");
}

void launch_t2w_pad_rows(const float* x, int64_t rows, int64_t t, int64_t left, int64_t right,
                         int mode, float* y) {
  const int64_t to = t + left + right, n = rows * to;
  if (n <= 0) return;
  pad_rows_kernel<<<grid_for(n, kThreads), kThreads>>>(x, t, left, to, mode, y, n);
  check_launch("pad_time");
}

void launch_t2w_upsample_nearest(const float* x, int64_t rows, int64_t t, int64_t factor,
                                 float* y) {
  const int64_t n = rows * t * factor;
  if (n <= 0) return;
  upsample_kernel<<<grid_for(n, kThreads), kThreads>>>(x, factor, y, n);
  check_launch("upsample_nearest_time");
}

void launch_t2w_add_bias_rows(float* y, int64_t B, int64_t C, int64_t T, const float* bias) {
  const int64_t n = B * C * T;
  if (n <= 0 || !bias) return;
  if (T % 4 == 0 && aligned16(y) && B * C <= 65535) {
    add_bias_rows4_kernel<<<row_grid(B * C, T / 4), kThreads>>>(y, C, T / 4, bias);
    check_launch("conv bias");
    return;
  }
  add_bias_rows_kernel<<<grid_for(n, kThreads), kThreads>>>(y, C, T, bias, n);
  check_launch("conv bias");
}

void launch_t2w_copy_strided(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                             int64_t outer, int64_t inner) {
  const int64_t n = outer * inner;
  if (n <= 0) return;
  if (inner % 4 == 0 && src_stride % 4 == 0 && dst_stride % 4 == 0 && aligned16(src) &&
      aligned16(dst) && outer <= 65535) {
    copy_strided4_kernel<<<row_grid(outer, inner / 4), kThreads>>>(
        reinterpret_cast<const float4*>(src), src_stride / 4, reinterpret_cast<float4*>(dst),
        dst_stride / 4, inner / 4);
    check_launch("strided copy");
    return;
  }
  copy_strided_kernel<<<grid_for(n, kThreads), kThreads>>>(src, src_stride, dst, dst_stride, inner,
                                                           n);
  check_launch("strided copy");
}

}  // namespace stepaudio::cuda
