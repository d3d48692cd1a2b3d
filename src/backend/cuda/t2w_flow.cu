// Kernels of the flow's composite ops: the relative-position attention's bias add and shifted
// softmax (its three products run in cuBLAS), the DiT timestep embedding, the adaLN modulated
// LayerNorm and the L2 normalisation. Statistics are summed in float64 as the CPU reference sums
// them; the elementwise tails avoid FMA contraction where the CPU rounds twice.
#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>

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

// The same LayerNorm with a warp per row and float4 accesses (C % 4 == 0, every pointer 16-byte
// aligned: the launcher checks), which keeps a DiT row (512 floats) in flight without block-wide
// barriers. kAdd: first x += gate[b] * add in place with gated_add_'s arithmetic (x + g*y, each
// step rounded), so "gated residual, then the next adaLN" is one pass over the row. The statistics
// are the same float64 sums in another order.
// The mean and 1 / std (biased variance, float64 sums, two passes) of a warp's row of C4 float4s,
// from each lane's part of the row sum (lane owns c = lane, lane + 32, ...).
__device__ __forceinline__ void row_stats(const float4* xr, int C4, int lane, double lane_sum,
                                          float eps, float& m, float& rstd) {
  const double C = 4.0 * C4;
  const double mean = warp_sum_d(lane_sum) / C;
  double sq = 0;
  for (int c = lane; c < C4; c += 32) {
    const float4 v = xr[c];
    const double d0 = v.x - mean, d1 = v.y - mean, d2 = v.z - mean, d3 = v.w - mean;
    sq += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
  }
  sq = warp_sum_d(sq);
  m = static_cast<float>(mean);
  rstd = static_cast<float>(1.0 / sqrt(sq / C + eps));
}

__device__ __forceinline__ float gated(float x, float g, float y) {
  return __fadd_rn(x, __fmul_rn(g, y));
}

template <bool kAdd>
__global__ void modulated_ln_vec_kernel(float* x, const float* gate, const float* add, int rows,
                                        int T, int C4, const float* shift, const float* scale,
                                        float eps, float* y) {
  const int row = static_cast<int>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x / 32);
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (row >= rows) return;  // uniform over the warp
  const int64_t b = row / T;
  float4* xr = reinterpret_cast<float4*>(x) + int64_t{row} * C4;
  double sum = 0;
  for (int c = lane; c < C4; c += 32) {
    float4 v = xr[c];
    if constexpr (kAdd) {
      const float4 g = reinterpret_cast<const float4*>(gate)[b * C4 + c];
      const float4 a = reinterpret_cast<const float4*>(add)[int64_t{row} * C4 + c];
      v = make_float4(gated(v.x, g.x, a.x), gated(v.y, g.y, a.y), gated(v.z, g.z, a.z),
                      gated(v.w, g.w, a.w));
      xr[c] = v;
    }
    sum += (static_cast<double>(v.x) + v.y) + (static_cast<double>(v.z) + v.w);
  }
  float m, rstd;
  row_stats(xr, C4, lane, sum, eps, m, rstd);
  const float4* sh = reinterpret_cast<const float4*>(shift) + b * C4;
  const float4* sc = reinterpret_cast<const float4*>(scale) + b * C4;
  float4* yr = reinterpret_cast<float4*>(y) + int64_t{row} * C4;
  auto one = [&](float v, float s, float h) {
    return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(v, m), rstd), 1.f + s), h);
  };
  for (int c = lane; c < C4; c += 32) {
    const float4 v = xr[c], s4 = sc[c], h4 = sh[c];
    yr[c] = make_float4(one(v.x, s4.x, h4.x), one(v.y, s4.y, h4.y), one(v.z, s4.z, h4.z),
                        one(v.w, s4.w, h4.w));
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether the warp-per-row float4 kernel takes this call.
bool ln_vec_ok(int64_t rows, int64_t C, std::initializer_list<const void*> ptrs) {
  if (rows > INT_MAX || C % 4 != 0 || C / 4 > INT_MAX) return false;
  for (const void* p : ptrs)
    if (!aligned16(p)) return false;
  return true;
}

template <bool kAdd>
void run_ln_vec(float* x, const float* gate, const float* add, int64_t B, int64_t T, int64_t C,
                const float* shift, const float* scale, float eps, float* y) {
  constexpr int kWarps = 8;
  const int64_t rows = B * T;
  const unsigned blocks = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
  modulated_ln_vec_kernel<kAdd>
      <<<blocks, kWarps * 32>>>(x, gate, add, static_cast<int>(rows), static_cast<int>(T),
                                static_cast<int>(C / 4), shift, scale, eps, y);
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

// Mish as act<Mish> in t2w_pointwise.cu computes it.
__device__ __forceinline__ float mish1(float v) {
  if (v > 20.f) return v;
  const float e = expf(v), m = e * (e + 2.f);
  return v * m / (m + 2.f);
}

// The conv block's LayerNorm (affine, biased variance, float64 statistics as the CPU's) and the
// Mish after it in one pass: a warp per row, float4 (C % 4 == 0, pointers 16-byte aligned).
__global__ void layer_norm_mish_vec_kernel(const float* x, int rows, int C4, const float* w,
                                           const float* bias, float eps, float* y) {
  const int row = static_cast<int>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x / 32);
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (row >= rows) return;  // uniform over the warp
  const float4* xr = reinterpret_cast<const float4*>(x) + int64_t{row} * C4;
  double sum = 0;
  for (int c = lane; c < C4; c += 32) {
    const float4 v = xr[c];
    sum += (static_cast<double>(v.x) + v.y) + (static_cast<double>(v.z) + v.w);
  }
  float m, inv;
  row_stats(xr, C4, lane, sum, eps, m, inv);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  const float4* b4 = reinterpret_cast<const float4*>(bias);
  float4* yr = reinterpret_cast<float4*>(y) + int64_t{row} * C4;
  auto one = [&](float v, float g, float h) {
    return mish1(__fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(v, m), inv), g), h));
  };
  for (int c = lane; c < C4; c += 32) {
    const float4 v = xr[c], g = w4[c], h = b4[c];
    yr[c] =
        make_float4(one(v.x, g.x, h.x), one(v.y, g.y, h.y), one(v.z, g.z, h.z), one(v.w, g.w, h.w));
  }
}

// One warp per (row, head, part), part 0 = q and 1 = k (LayerNorm over the head's D values, two
// passes as the reference), 2 = v (a copy). Every branch is uniform over the warp, so the full-mask
// shuffles of warp_sum see all 32 lanes. O = float, or __nv_bfloat16 for the flash kernel (rounded
// to nearest even, as the conversion the attention would otherwise run).
__device__ __forceinline__ void store_out(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_out(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

template <typename O>
__global__ void split_qkv_norm_kernel(const float* qkv, int64_t n_warps, int H, int D,
                                      const float* qw, const float* qb, const float* kw,
                                      const float* kb, float eps, O* q, O* k, O* v) {
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (warp >= n_warps) return;
  const int part = static_cast<int>(warp % 3);
  const int64_t rh = warp / 3, row = rh / H;
  const int h = static_cast<int>(rh % H);
  const int64_t HD = int64_t{H} * D;
  const float* src = qkv + row * 3 * HD + part * HD + int64_t{h} * D;
  O* dst = (part == 0 ? q : part == 1 ? k : v) + row * HD + int64_t{h} * D;
  if (part == 2) {
    for (int i = lane; i < D; i += 32) store_out(dst + i, src[i]);
    return;
  }
  float s = 0.f;
  for (int i = lane; i < D; i += 32) s += src[i];
  const float mean = warp_sum(s) / static_cast<float>(D);
  float ss = 0.f;
  for (int i = lane; i < D; i += 32) {
    const float d = src[i] - mean;
    ss += d * d;
  }
  const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(D) + eps);
  const float* w = part == 0 ? qw : kw;
  const float* b = part == 0 ? qb : kb;
  for (int i = lane; i < D; i += 32) store_out(dst + i, (src[i] - mean) * inv * w[i] + b[i]);
}

}  // namespace

template <typename O>
void run_split_qkv_norm(const float* qkv, int64_t rows, int64_t H, int64_t D, const float* qw,
                        const float* qb, const float* kw, const float* kb, float eps, void* q,
                        void* k, void* v) {
  const int64_t n_warps = rows * H * 3;
  if (n_warps <= 0 || D <= 0) return;
  constexpr int kWarpsPerBlock = 8;
  const int64_t blocks = (n_warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  split_qkv_norm_kernel<O><<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32>>>(
      qkv, n_warps, static_cast<int>(H), static_cast<int>(D), qw, qb, kw, kb, eps,
      static_cast<O*>(q), static_cast<O*>(k), static_cast<O*>(v));
  check_launch("split_qkv_norm");
}

void launch_t2w_split_qkv_norm(const float* qkv, int64_t rows, int64_t H, int64_t D,
                               const float* qw, const float* qb, const float* kw, const float* kb,
                               float eps, bool bf16, void* q, void* k, void* v) {
  if (bf16)
    run_split_qkv_norm<__nv_bfloat16>(qkv, rows, H, D, qw, qb, kw, kb, eps, q, k, v);
  else
    run_split_qkv_norm<float>(qkv, rows, H, D, qw, qb, kw, kb, eps, q, k, v);
}

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
  if (ln_vec_ok(B * T, C, {x, shift, scale, y})) {
    // The kernel only reads x when kAdd is false.
    run_ln_vec<false>(const_cast<float*>(x), nullptr, nullptr, B, T, C, shift, scale, eps, y);
    check_launch("modulated_layer_norm");
    return;
  }
  modulated_ln_kernel<<<static_cast<unsigned>(B * T), kThreads>>>(x, T, C, shift, scale, eps, y);
  check_launch("modulated_layer_norm");
}

void launch_t2w_gated_add_modulated_ln(float* x, const float* gate, const float* add, int64_t B,
                                       int64_t T, int64_t C, const float* shift, const float* scale,
                                       float eps, float* y) {
  if (B * T <= 0 || C <= 0) return;
  if (ln_vec_ok(B * T, C, {x, gate, add, shift, scale, y})) {
    run_ln_vec<true>(x, gate, add, B, T, C, shift, scale, eps, y);
    check_launch("gated_add + modulated_layer_norm");
    return;
  }
  launch_t2w_gated_add(x, gate, add, B, T, C);
  launch_t2w_modulated_layer_norm(x, B, T, C, shift, scale, eps, y);
}

bool launch_t2w_layer_norm_mish(const float* x, int64_t rows, int64_t C, const float* w,
                                const float* b, float eps, float* y) {
  if (rows <= 0 || C <= 0) return true;
  if (!ln_vec_ok(rows, C, {x, w, b, y})) return false;
  constexpr int kWarps = 8;
  const unsigned blocks = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
  layer_norm_mish_vec_kernel<<<blocks, kWarps * 32>>>(x, static_cast<int>(rows),
                                                      static_cast<int>(C / 4), w, b, eps, y);
  check_launch("layer_norm + mish");
  return true;
}

void launch_t2w_l2_normalize(const float* x, int64_t rows, int64_t n, float eps, float* y) {
  if (rows <= 0 || n <= 0) return;
  l2_normalize_kernel<<<static_cast<unsigned>(rows), kThreads>>>(x, n, eps, y);
  check_launch("l2_normalize");
}

}  // namespace stepaudio::cuda
