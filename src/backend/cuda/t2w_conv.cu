// Convolution helpers of token2wav: im2col with dilation / stride / asymmetric padding (the GEMM
// runs in cuBLAS), a direct depthwise kernel, and the gather half of ConvTranspose1d.
#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/t2w_kernels.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void im2col_kernel(const float* x, int64_t c_in, int64_t t_in, int64_t k, int64_t t_out,
                              int64_t stride, int64_t pad_left, int64_t dilation, float* col,
                              int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i % t_out, row = i / t_out;  // row = (b * c_in + c) * k + kk
    const int64_t kk = row % k, bc = row / k;
    const int64_t src = t * stride - pad_left + kk * dilation;
    col[i] = (src >= 0 && src < t_in) ? x[bc * t_in + src] : 0.f;
  }
}

__global__ void depthwise_kernel(const float* x, int64_t c_in, int64_t t_in, int64_t c_out,
                                 int64_t k, int64_t t_out, int64_t stride, int64_t pad_left,
                                 int64_t dilation, int64_t per_group, const float* w,
                                 const float* bias, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i % t_out, bo = i / t_out, co = bo % c_out, b = bo / c_out;
    const float* xr = x + (b * c_in + co / per_group) * t_in;
    const float* wr = w + co * k;
    const int64_t base = t * stride - pad_left;
    float acc = 0.f;
    for (int64_t kk = 0; kk < k; ++kk) {
      const int64_t src = base + kk * dilation;
      if (src >= 0 && src < t_in) acc += wr[kk] * xr[src];
    }
    y[i] = acc + (bias ? bias[co] : 0.f);
  }
}

// y[b, co, to] = bias[co] + sum over kk of col[b, co*k + kk, t] where t*stride - pad + kk = to.
__global__ void col2im_transpose_kernel(const float* col, int64_t c_out, int64_t k, int64_t t_in,
                                        int64_t stride, int64_t pad, int64_t t_out,
                                        const float* bias, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t to = i % t_out, bo = i / t_out, co = bo % c_out, b = bo / c_out;
    const float* cb = col + (b * c_out + co) * k * t_in;
    float acc = 0.f;
    // Taps kk with (to + pad - kk) divisible by stride, t = (to + pad - kk) / stride in range.
    const int64_t p = to + pad;
    for (int64_t kk = p % stride; kk < k; kk += stride) {
      const int64_t t = (p - kk) / stride;
      if (t < 0) break;
      if (t < t_in) acc += cb[kk * t_in + t];
    }
    y[i] = (bias ? bias[co] : 0.f) + acc;
  }
}

// Channels-last causal im2col: col[b*T + t, c*K + kk] = frame t + kk - P of [ctx; x] (P = K-1
// frames of left context, channels-first ctx [B, C, P], or zeros when ctx is null). One thread per
// element with the column index fastest, so consecutive threads write consecutive floats; the reads
// of x (channel c = col / K) are strided by K floats, within one row of x.
__global__ void im2col_causal_cl_kernel(const float* x, const float* ctx, int64_t T, int64_t C,
                                        int64_t K, float* col, int64_t n) {
  const int64_t P = K - 1, CK = C * K;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i % CK, row = i / CK;  // row = b * T + t
    const int64_t c = j / K, kk = j % K, t = row % T, b = row / T;
    const int64_t u = t + kk - P;  // frame index in x; negative: the context
    float v;
    if (u >= 0)
      v = x[row * C + (kk - P) * C + c];  // = x[(b*T + u) * C + c]
    else
      v = ctx ? ctx[(b * C + c) * P + (P + u)] : 0.f;
    col[i] = v;
  }
}

// The context after this chunk: the last P frames of [ctx; x], channels-first [B, C, P].
__global__ void causal_ctx_cl_kernel(const float* x, const float* ctx, int64_t T, int64_t C,
                                     int64_t P, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i % P, bc = i / P, c = bc % C, b = bc / C;
    const int64_t u = T - P + j;  // frame in x; negative: still in the old context
    out[i] = u >= 0 ? x[(b * T + u) * C + c] : (ctx ? ctx[bc * P + (P + u)] : 0.f);
  }
}

// The context's share of the first R frames of a causal conv: col [B, R, C*K], element
// (b, t, c*K + kk) = frame t + kk of ctx [B, C, P] where that is < P (the frames from x are zero
// here; the shifted products add them).
__global__ void causal_ctx_col_kernel(const float* ctx, int64_t R, int64_t C, int64_t K, float* col,
                                      int64_t n) {
  const int64_t P = K - 1, CK = C * K;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i % CK, row = i / CK;  // row = b * R + t
    const int64_t c = j / K, kk = j % K, t = row % R, b = row / R;
    const int64_t u = t + kk;
    col[i] = u < P ? ctx[(b * C + c) * P + u] : 0.f;
  }
}

}  // namespace

void launch_t2w_causal_ctx_col(const float* ctx, int64_t B, int64_t R, int64_t C, int64_t K,
                               float* col) {
  const int64_t n = B * R * C * K;
  if (n <= 0) return;
  causal_ctx_col_kernel<<<grid_for(n, kThreads), kThreads>>>(ctx, R, C, K, col, n);
  check_launch("channels-last causal context columns");
}

void launch_t2w_im2col_causal_cl(const float* x, const float* ctx, int64_t B, int64_t T, int64_t C,
                                 int64_t K, float* col) {
  const int64_t n = B * T * C * K;
  if (n <= 0) return;
  im2col_causal_cl_kernel<<<grid_for(n, kThreads), kThreads>>>(x, ctx, T, C, K, col, n);
  check_launch("channels-last causal im2col");
}

void launch_t2w_causal_ctx_cl(const float* x, const float* ctx, int64_t B, int64_t T, int64_t C,
                              int64_t P, float* out) {
  const int64_t n = B * C * P;
  if (n <= 0) return;
  causal_ctx_cl_kernel<<<grid_for(n, kThreads), kThreads>>>(x, ctx, T, C, P, out, n);
  check_launch("channels-last causal context");
}

void launch_t2w_im2col(const float* x, int64_t B, const T2wConvShape& s, float* col) {
  const int64_t n = B * s.c_in * s.k * s.t_out;
  if (n <= 0) return;
  im2col_kernel<<<grid_for(n, kThreads), kThreads>>>(x, s.c_in, s.t_in, s.k, s.t_out, s.stride,
                                                     s.pad_left, s.dilation, col, n);
  check_launch("conv1d_ex im2col");
}

void launch_t2w_conv_depthwise(const float* x, int64_t B, const T2wConvShape& s, const float* w,
                               const float* bias, float* y) {
  const int64_t n = B * s.c_out * s.t_out;
  if (n <= 0) return;
  depthwise_kernel<<<grid_for(n, kThreads), kThreads>>>(x, s.c_in, s.t_in, s.c_out, s.k, s.t_out,
                                                        s.stride, s.pad_left, s.dilation,
                                                        s.c_out / s.groups, w, bias, y, n);
  check_launch("conv1d_ex depthwise");
}

void launch_t2w_col2im_transpose(const float* col, int64_t B, int64_t c_out, int64_t k,
                                 int64_t t_in, int64_t stride, int64_t pad, int64_t t_out,
                                 const float* bias, float* y) {
  const int64_t n = B * c_out * t_out;
  if (n <= 0) return;
  col2im_transpose_kernel<<<grid_for(n, kThreads), kThreads>>>(col, c_out, k, t_in, stride, pad,
                                                               t_out, bias, y, n);
  check_launch("conv_transpose1d col2im");
}

}  // namespace stepaudio::cuda
