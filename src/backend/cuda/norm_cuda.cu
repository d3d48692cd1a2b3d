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

}  // namespace

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
