// Kernels of the flow's composite ops: the relative-position attention's bias add and shifted
// softmax (its three products run in cuBLAS), the DiT timestep embedding, the adaLN modulated
// LayerNorm and the L2 normalisation. Statistics are summed in float64 as the CPU reference sums
// them; the elementwise tails avoid FMA contraction where the CPU rounds twice.
#include <cmath>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/t2w_kernels.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide float64 sum (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ double block_sum_d(double v, double* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum_d(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  v = lane < nw ? scratch[lane] : 0.0;
  return warp_sum_d(v);
}

__device__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  v = lane < nw ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

__global__ void add_pos_bias_kernel(const float* q, const float* u, const float* w, int64_t HD,
                                    float* qu, float* qw, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = i % HD;
    qu[i] = q[i] + u[c];
    qw[i] = q[i] + w[c];
  }
}

// One block per (h, i) row.
__global__ void rel_softmax_kernel(float* ac, const float* bd, int64_t T1, int64_t T2,
                                   float sqrt_d) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x, i = row % T1;
  const int64_t P = 2 * T2 - 1;
  float* s = ac + row * T2;
  const float* br = bd + row * P + (T1 - 1 - i);
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < T2; j += blockDim.x) {
    const float v = (s[j] + br[j]) / sqrt_d;
    s[j] = v;
    mx = fmaxf(mx, v);
  }
  mx = block_max(mx, scratch);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < T2; j += blockDim.x) {
    const float e = expf(s[j] - mx);
    s[j] = e;
    sum += e;
  }
  sum = block_sum(sum, scratch);
  for (int64_t j = threadIdx.x; j < T2; j += blockDim.x) s[j] /= sum;
}

__global__ void timestep_kernel(const float* t, int64_t B, int64_t half, float scale, float neg_log,
                                float* y) {
  const int64_t n = B * half;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = idx / half, i = idx % half;
    const float tb = t[b] * scale;
    // The float32 argument as the CPU forms it; exp / cos / sin in float64, then rounded, which
    // gives the correctly rounded float32 values the host library returns (angles reach ~1000
    // rad, where a 1-ulp difference in the frequency would show).
    const float arg =
        __fdiv_rn(__fmul_rn(static_cast<float>(i), neg_log), static_cast<float>(half));
    const float f = static_cast<float>(exp(static_cast<double>(arg)));
    const float a = __fmul_rn(tb, f);
    float* o = y + b * 2 * half;
    o[i] = static_cast<float>(cos(static_cast<double>(a)));
    o[half + i] = static_cast<float>(sin(static_cast<double>(a)));
  }
}

// One block per row of C.
__global__ void modulated_ln_kernel(const float* x, int64_t T, int64_t C, const float* shift,
                                    const float* scale, float eps, float* y) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x, b = r / T;
  const float* xr = x + r * C;
  double sum = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += xr[c];
  const double mean = block_sum_d(sum, scratch) / static_cast<double>(C);
  double sq = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const double d = xr[c] - mean;
    sq += d * d;
  }
  sq = block_sum_d(sq, scratch);
  const float m = static_cast<float>(mean);
  const float rstd = static_cast<float>(1.0 / sqrt(sq / static_cast<double>(C) + eps));
  const float* sh = shift + b * C;
  const float* sc = scale + b * C;
  float* yr = y + r * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    yr[c] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(xr[c], m), rstd), 1.f + sc[c]), sh[c]);
}

__global__ void l2_normalize_kernel(const float* x, int64_t n, float eps, float* y) {
  __shared__ double scratch[32];
  const float* xr = x + blockIdx.x * n;
  double sq = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sq += static_cast<double>(xr[i]) * xr[i];
  sq = block_sum_d(sq, scratch);
  const float norm = fmaxf(static_cast<float>(sqrt(sq)), eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[blockIdx.x * n + i] = xr[i] / norm;
}

}  // namespace

void launch_t2w_add_pos_bias(const float* q, const float* u, const float* w, int64_t rows,
                             int64_t HD, float* qu, float* qw) {
  const int64_t n = rows * HD;
  if (n <= 0) return;
  add_pos_bias_kernel<<<grid_for(n, kThreads), kThreads>>>(q, u, w, HD, qu, qw, n);
  check_launch("rel_pos_attention bias");
}

void launch_t2w_rel_softmax(float* ac, const float* bd, int64_t H, int64_t T1, int64_t T2,
                            int64_t D) {
  if (H * T1 <= 0 || T2 <= 0) return;
  rel_softmax_kernel<<<static_cast<unsigned>(H * T1), kThreads>>>(ac, bd, T1, T2,
                                                                  sqrtf(static_cast<float>(D)));
  check_launch("rel_pos_attention softmax");
}

void launch_t2w_timestep_embedding(const float* t, int64_t B, int64_t dim, float scale,
                                   float max_period, float* y) {
  const int64_t half = dim / 2;
  if (B * half <= 0) return;
  const float neg_log = -static_cast<float>(std::log(static_cast<double>(max_period)));
  timestep_kernel<<<grid_for(B * half, kThreads), kThreads>>>(t, B, half, scale, neg_log, y);
  check_launch("timestep_embedding");
}

void launch_t2w_modulated_layer_norm(const float* x, int64_t B, int64_t T, int64_t C,
                                     const float* shift, const float* scale, float eps, float* y) {
  if (B * T <= 0 || C <= 0) return;
  modulated_ln_kernel<<<static_cast<unsigned>(B * T), kThreads>>>(x, T, C, shift, scale, eps, y);
  check_launch("modulated_layer_norm");
}

void launch_t2w_l2_normalize(const float* x, int64_t rows, int64_t n, float eps, float* y) {
  if (rows <= 0 || n <= 0) return;
  l2_normalize_kernel<<<static_cast<unsigned>(rows), kThreads>>>(x, n, eps, y);
  check_launch("l2_normalize");
}

}  // namespace stepaudio::cuda
