// Pointwise and copy kernels of token2wav (activations, Snake, gated residuals, padding,
// up-sampling, strided copies). Float32 throughout, one thread per element in grid-stride loops.
#include <cmath>

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

template <T2wAct A>
void run_act(float* x, int64_t n, float p) {
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

__global__ void snake_kernel(float* x, const float* alpha, int64_t C, int64_t T, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float a = alpha[(i / T) % C];
    const float inv = 1.f / (a + 1e-9f);
    const float s = sinf(a * x[i]);
    x[i] += inv * s * s;
  }
}

__global__ void gated_add_kernel(float* x, const float* gate, const float* y, int64_t T, int64_t C,
                                 int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = i / (T * C), c = i % C;
    x[i] = __fadd_rn(x[i], __fmul_rn(gate[b * C + c], y[i]));
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

__global__ void copy_strided_kernel(const float* src, int64_t ss, float* dst, int64_t ds,
                                    int64_t inner, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i / inner, j = i % inner;
    dst[o * ds + j] = src[o * ss + j];
  }
}

}  // namespace

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
  snake_kernel<<<grid_for(n, kThreads), kThreads>>>(x, alpha, C, T, n);
  check_launch("snake");
}

void launch_t2w_gated_add(float* x, const float* gate, const float* y, int64_t B, int64_t T,
                          int64_t C) {
  const int64_t n = B * T * C;
  if (n <= 0) return;
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
  add_bias_rows_kernel<<<grid_for(n, kThreads), kThreads>>>(y, C, T, bias, n);
  check_launch("conv bias");
}

void launch_t2w_copy_strided(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                             int64_t outer, int64_t inner) {
  const int64_t n = outer * inner;
  if (n <= 0) return;
  copy_strided_kernel<<<grid_for(n, kThreads), kThreads>>>(src, src_stride, dst, dst_stride, inner,
                                                           n);
  check_launch("strided copy");
}

}  // namespace stepaudio::cuda
