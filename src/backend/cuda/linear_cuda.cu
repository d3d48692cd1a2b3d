// The kernels of linear and conv1d: a GEMV for up to 8 rows of x that streams W once with
// 16-byte loads, several in flight per lane, fp32 accumulate, bias fused; the decode projections'
// GEMV with RMSNorm or SwiGLU folded into the load of x and the residual add into the store; the
// casting prologues of their cuBLAS path; the bias add after a cuBLAS product; im2col for conv1d.
// (The cuBLAS call itself is in ops_cuda.cpp.)
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/pdl.cuh"

namespace stepaudio::cuda {

namespace {

constexpr int kGemvWarps = 4;  // rows of W per block: small blocks keep the last wave short
constexpr int kUnroll = 4;     // 16-byte loads of W in flight per lane
constexpr int kPrefetch = 8;   // 16-byte vectors per lane prefetched before the dependency wait

// A streaming load of W: read once, so keep it out of L1 (x lives there) and fetch whole
// 256-byte L2 sectors ahead.
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}

// The weights of one 16-byte vector as floats.
template <typename W>
struct Vec;
template <>
struct Vec<__nv_bfloat16> {
  static constexpr int kElems = 8;
  __device__ __forceinline__ static void unpack(const uint4& v, float* f) {
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[2 * i] = __uint_as_float(u[i] << 16);
      f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
  }
};
template <>
struct Vec<__half> {
  static constexpr int kElems = 8;
  __device__ __forceinline__ static void unpack(const uint4& v, float* f) {
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      __half2 h = *reinterpret_cast<const __half2*>(&u[i]);
      float2 t = __half22float2(h);
      f[2 * i] = t.x;
      f[2 * i + 1] = t.y;
    }
  }
};
template <>
struct Vec<float> {
  static constexpr int kElems = 4;
  __device__ __forceinline__ static void unpack(const uint4& v, float* f) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
  }
};

template <typename W, int M>
__device__ __forceinline__ void fma_vec(const uint4& wv, const float* __restrict__ x, int64_t K,
                                        int64_t k, float* acc) {
  constexpr int E = Vec<W>::kElems;
  float wf[E];
  Vec<W>::unpack(wv, wf);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float4* xp = reinterpret_cast<const float4*>(x + m * K + k);
#pragma unroll
    for (int j = 0; j < E / 4; ++j) {
      const float4 xv = __ldg(xp + j);
      acc[m] = fmaf(wf[4 * j], xv.x, acc[m]);
      acc[m] = fmaf(wf[4 * j + 1], xv.y, acc[m]);
      acc[m] = fmaf(wf[4 * j + 2], xv.z, acc[m]);
      acc[m] = fmaf(wf[4 * j + 3], xv.w, acc[m]);
    }
  }
}

// One warp per output feature n: y[m, n] = sum_k x[m, k] W[n, k] + b[n] for the M rows of x.
// Needs K % (16 / sizeof(W)) == 0, K % 4 == 0 and 16-byte aligned x and W.
template <typename W, typename B, int M>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_kernel(const float* __restrict__ x, const W* __restrict__ w, const B* __restrict__ bias,
                float* __restrict__ y, int64_t N, int64_t K, bool accumulate) {
  constexpr int E = Vec<W>::kElems;
  const int64_t n = int64_t{blockIdx.x} * kGemvWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= N) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + n * K);
  const int64_t nv = K / E;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Launched as a programmatic dependent (launch_gemv): the weights do not depend on the previous
  // kernel, so start pulling the first of them into L2 while it drains, then wait for x.
  for (int64_t i = 0; i < kPrefetch; ++i)
    if (lane + 32 * i < nv) asm volatile("prefetch.global.L2 [%0];" ::"l"(wr + lane + 32 * i));
#endif
  pdl_wait();
  pdl_trigger();
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  int64_t v = lane;
  for (; v + 32 * (kUnroll - 1) < nv; v += 32 * kUnroll) {
    uint4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) wv[u] = load_stream(wr + v + 32 * u);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) fma_vec<W, M>(wv[u], x, K, (v + 32 * u) * E, acc);
  }
  for (; v < nv; v += 32) fma_vec<W, M>(load_stream(wr + v), x, K, v * E, acc);
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = warp_sum(acc[m]);
  if (lane == 0) {
    const float bn = bias ? load_f32(bias, n) : 0.0f;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float p = acc[m] + bn;
      y[m * N + n] = accumulate ? y[m * N + n] + p : p;
    }
  }
}

// Any shape and alignment: one warp per (row of x, output feature), scalar loads.
template <typename W, typename B>
__global__ void linear_generic_kernel(const float* x, const W* w, const B* bias, float* y,
                                      int64_t M, int64_t N, int64_t K, bool accumulate) {
  const int64_t t = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (t >= M * N) return;
  const int64_t m = t / N, n = t % N;
  float acc = 0;
  for (int64_t k = lane; k < K; k += 32) acc = fmaf(load_f32(w, n * K + k), x[m * K + k], acc);
  acc = warp_sum(acc);
  if (lane == 0) {
    const float p = acc + (bias ? load_f32(bias, n) : 0.0f);
    y[t] = accumulate ? y[t] + p : p;
  }
}

// The fused decode GEMV (launch_fused_gemv). A block of kFusedWarps warps owns kFusedRows
// consecutive output features, kFusedRowsPerWarp per warp: every x value a lane reads from shared
// memory serves two rows of W, and the blocks are few and full enough that staging x costs little
// (x is re-read from L2 once per block: for the fused gate|up product 2368 x 14 KB = 33 MB, an
// eighth of its weight bytes, where the 4-row blocks of gemv_kernel re-read four times that).
constexpr int kFusedWarps = 8;
constexpr int kFusedRowsPerWarp = 2;
constexpr int kFusedRows = kFusedWarps * kFusedRowsPerWarp;
constexpr int kFusedMaxM = 4;                  // rows of x per launch; more are split
constexpr int64_t kFusedSmemMax = 100 * 1024;  // staged x per block: two blocks still fit an SM

__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// y[m, n0 + r] for the R rows of W in wv (one 16-byte vector each) at column k.
template <typename W, int M, int R>
__device__ __forceinline__ void fma_rows(const uint4* wv, const float* xs, int64_t K, int64_t k,
                                         float (&acc)[M][R]) {
  constexpr int E = Vec<W>::kElems;
  float wf[R][E];
#pragma unroll
  for (int r = 0; r < R; ++r) Vec<W>::unpack(wv[r], wf[r]);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float4* xp = reinterpret_cast<const float4*>(xs + m * K + k);
#pragma unroll
    for (int j = 0; j < E / 4; ++j) {
      const float4 xv = xp[j];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        acc[m][r] = fmaf(wf[r][4 * j], xv.x, acc[m][r]);
        acc[m][r] = fmaf(wf[r][4 * j + 1], xv.y, acc[m][r]);
        acc[m][r] = fmaf(wf[r][4 * j + 2], xv.z, acc[m][r]);
        acc[m][r] = fmaf(wf[r][4 * j + 3], xv.w, acc[m][r]);
      }
    }
  }
}

// Needs K % E == 0, K % 4 == 0, 16-byte aligned x, W and norm_w, and M * K floats of dynamic
// shared memory. Each output is one warp's fixed-order sum: deterministic, graph replays are
// bit-identical. In place (accumulate) is safe: lane 0 of the warp that owns y[m, n] is the only
// thread that reads or writes it, and x (staged before any store) does not overlap y.
template <typename W, int M, GemvInput In>
__global__ void __launch_bounds__(kFusedWarps * 32) fused_gemv_kernel(FusedGemvArgs a) {
  constexpr int E = Vec<W>::kElems;
  constexpr int R = kFusedRowsPerWarp;
  extern __shared__ float4 xs4[];
  __shared__ float scratch[32];
  const int64_t N = a.N, K = a.K, nv = K / E, kv4 = K / 4;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n0 = int64_t{blockIdx.x} * kFusedRows + warp * R;
  const W* w = static_cast<const W*>(a.w);
  const uint4* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r)
    wr[r] = reinterpret_cast<const uint4*>(w + (n0 + r < N ? n0 + r : N - 1) * K);
  // The weights do not depend on earlier kernels: start pulling the first of them into L2 so that
  // HBM is busy while x is staged (and, under programmatic launch, while the previous kernel
  // drains).
  if (n0 < N) {
#pragma unroll
    for (int r = 0; r < R; ++r)
      for (int64_t i = 0; i < kPrefetch; ++i)
        if (lane + 32 * i < nv)
          asm volatile("prefetch.global.L2 [%0];" ::"l"(wr[r] + lane + 32 * i));
  }
  pdl_wait();
  pdl_trigger();

  // Stage the M rows of x, with the op before the product applied.
  const float4* x4 = reinterpret_cast<const float4*>(a.x);
  for (int m = 0; m < M; ++m) {
    float4* xs = xs4 + m * kv4;
    if constexpr (In == GemvInput::SwiGlu) {
      const float4* g4 = x4 + m * 2 * kv4;
      const float4* u4 = g4 + kv4;
#pragma unroll 4
      for (int64_t i = threadIdx.x; i < kv4; i += blockDim.x) {
        const float4 g = g4[i], u = u4[i];
        xs[i] = make_float4(silu_times(g.x, u.x), silu_times(g.y, u.y), silu_times(g.z, u.z),
                            silu_times(g.w, u.w));
      }
    } else {
      const float4* xr = x4 + m * kv4;
      float ss = 0.0f;
#pragma unroll 4
      for (int64_t i = threadIdx.x; i < kv4; i += blockDim.x) {
        const float4 v = xr[i];
        xs[i] = v;
        if constexpr (In == GemvInput::RmsNorm)
          ss = fmaf(v.w, v.w, fmaf(v.z, v.z, fmaf(v.y, v.y, fmaf(v.x, v.x, ss))));
      }
      if constexpr (In == GemvInput::RmsNorm) {
        // Same expression as the rms_norm kernels: w * (x * inv_rms). Each thread rescales the
        // elements it stored itself, so no barrier is needed between the passes.
        const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(K) + a.eps);
        const float4* nw = reinterpret_cast<const float4*>(a.norm_w);
        for (int64_t i = threadIdx.x; i < kv4; i += blockDim.x) {
          const float4 v = xs[i], g = nw[i];
          xs[i] = make_float4(g.x * (v.x * inv), g.y * (v.y * inv), g.z * (v.z * inv),
                              g.w * (v.w * inv));
        }
      }
    }
  }
  __syncthreads();
  if (n0 >= N) return;  // no barrier follows

  const float* xs = reinterpret_cast<const float*>(xs4);
  float acc[M][R];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[m][r] = 0.0f;
  int64_t v = lane;
  for (; v + 32 * (kUnroll - 1) < nv; v += 32 * kUnroll) {
    uint4 wv[kUnroll][R];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r) wv[u][r] = load_stream(wr[r] + v + 32 * u);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) fma_rows<W, M, R>(wv[u], xs, K, (v + 32 * u) * E, acc);
  }
  for (; v < nv; v += 32) {
    uint4 wv[R];
#pragma unroll
    for (int r = 0; r < R; ++r) wv[r] = load_stream(wr[r] + v);
    fma_rows<W, M, R>(wv, xs, K, v * E, acc);
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[m][r] = warp_sum(acc[m][r]);
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t n = n0 + r;
      if (n >= N) break;
      const float bn = a.b ? a.b[n] : 0.0f;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float p = acc[m][r] + bn;
        float* yp = a.y + m * N + n;
        *yp = a.accumulate ? *yp + p : p;
      }
    }
  }
}

template <typename T>
__device__ __forceinline__ T from_f32(float v) {
  if constexpr (std::is_same_v<T, float>)
    return v;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(v);
  else
    return __float2half_rn(v);
}

// One block per row; the same arithmetic as add_rms_norm_kernel, stored as T.
template <typename T>
__global__ void rms_norm_cast_kernel(const float* x, int64_t n, const float* w, float eps, T* y) {
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * n;
  T* yr = y + blockIdx.x * n;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = from_f32<T>(w[i] * (xr[i] * inv));
}

template <typename T>
__global__ void swiglu_cast_kernel(const float* gu, int64_t rows, int64_t I, T* y) {
  const int64_t n = rows * I;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = t / I, i = t % I;
    y[t] = from_f32<T>(silu_times(gu[b * 2 * I + i], gu[b * 2 * I + I + i]));
  }
}

template <typename B>
__global__ void add_bias_kernel(float* y, int64_t rows, int64_t N, const B* bias) {
  const int64_t n = rows * N;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] += load_f32(bias, i % N);
}

__global__ void im2col_kernel(const float* x, int64_t B, int64_t C, int64_t T, int64_t K,
                              int64_t stride, int64_t pad, int64_t To, float* col) {
  const int64_t n = B * To * C * K;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t k = i % K, c = (i / K) % C, t = (i / (K * C)) % To, b = i / (K * C * To);
    const int64_t src = t * stride - pad + k;
    col[i] = (src >= 0 && src < T) ? x[(b * C + c) * T + src] : 0.0f;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

// Programmatic dependent launch (pdl.cuh): the GEMV's blocks may start while the previous
// kernel's last blocks still run, prefetch weights, and wait in pdl_wait() for its results.
// Off by default: measured with the GEMVs alone it was neutral (H200, 2026-11-29: 190.7 vs
// 191.8 tok/s at batch 1); STEPAUDIO_PDL=1 turns it on for the whole decode chain.
namespace {
bool pdl_supported() {
  int dev = 0, major = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  return major >= 9;
}

int g_pdl = -1;  // -1: not decided yet
}  // namespace

bool pdl_enabled() {
  if (g_pdl < 0) {
    const char* e = std::getenv("STEPAUDIO_PDL");
    g_pdl = e && e[0] == '1' && pdl_supported();
  }
  return g_pdl == 1;
}

namespace {

template <typename W, typename B, int M>
void gemv_m(const float* x, const W* w, const B* b, float* y, int64_t N, int64_t K,
            bool accumulate) {
  const auto blocks = static_cast<unsigned>((N + kGemvWarps - 1) / kGemvWarps);
  launch_pdl(gemv_kernel<W, B, M>, dim3(blocks), dim3(kGemvWarps * 32), 0, x, w, b, y, N, K,
             accumulate);
}

template <typename W, int M, GemvInput In>
void fused_gemv_m(const FusedGemvArgs& a) {
  const auto blocks = static_cast<unsigned>((a.N + kFusedRows - 1) / kFusedRows);
  const size_t smem = static_cast<size_t>(M * a.K) * sizeof(float);
  // Above the default 48 KB a kernel must opt in (not a stream operation, so legal in a capture);
  // all of L1 as shared memory then keeps two such blocks per SM (L1 holds nothing else here).
  if (smem > 48 * 1024) {
    cudaFuncSetAttribute(fused_gemv_kernel<W, M, In>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    cudaFuncSetAttribute(fused_gemv_kernel<W, M, In>,
                         cudaFuncAttributePreferredSharedMemoryCarveout,
                         cudaSharedmemCarveoutMaxShared);
  }
  launch_pdl(fused_gemv_kernel<W, M, In>, dim3(blocks), dim3(kFusedWarps * 32), smem, a);
}

template <typename W, GemvInput In>
void fused_gemv(const FusedGemvArgs& a) {
  switch (a.M) {
    case 1:
      fused_gemv_m<W, 1, In>(a);
      break;
    case 2:
      fused_gemv_m<W, 2, In>(a);
      break;
    case 3:
      fused_gemv_m<W, 3, In>(a);
      break;
    default:
      fused_gemv_m<W, 4, In>(a);
      break;
  }
}

template <typename W, typename B>
void gemv(const float* x, int64_t M, const W* w, const B* b, float* y, int64_t N, int64_t K,
          bool accumulate = false) {
  constexpr int E = Vec<W>::kElems;
  const bool vec = K % E == 0 && K % 4 == 0 && aligned16(x) && aligned16(w);
  if (!vec) {
    linear_generic_kernel<W, B>
        <<<grid_for(M * N * 32, 256), 256>>>(x, w, b, y, M, N, K, accumulate);
    return;
  }
  switch (M) {
    case 1:
      gemv_m<W, B, 1>(x, w, b, y, N, K, accumulate);
      break;
    case 2:
      gemv_m<W, B, 2>(x, w, b, y, N, K, accumulate);
      break;
    case 3:
      gemv_m<W, B, 3>(x, w, b, y, N, K, accumulate);
      break;
    case 4:
      gemv_m<W, B, 4>(x, w, b, y, N, K, accumulate);
      break;
    case 5:
      gemv_m<W, B, 5>(x, w, b, y, N, K, accumulate);
      break;
    case 6:
      gemv_m<W, B, 6>(x, w, b, y, N, K, accumulate);
      break;
    case 7:
      gemv_m<W, B, 7>(x, w, b, y, N, K, accumulate);
      break;
    default:
      gemv_m<W, B, 8>(x, w, b, y, N, K, accumulate);
      break;
  }
}

}  // namespace

void set_gemv_pdl(bool on) { g_pdl = on && pdl_supported(); }

void launch_gemv(const float* x, int64_t M, const void* w, Elem wt, const void* b, Elem bt,
                 float* y, int64_t N, int64_t K) {
  with_elem(wt, [&](auto wtag) {
    using W = decltype(wtag);
    with_elem(bt, [&](auto btag) {
      using B = decltype(btag);
      gemv<W, B>(x, M, static_cast<const W*>(w), static_cast<const B*>(b), y, N, K);
    });
  });
  check_launch("linear (gemv)");
}

bool launch_fused_gemv(const FusedGemvArgs& a, GemvInput in) {
  if (a.M <= 0 || a.N <= 0) return true;
  const int64_t E = a.wt == Elem::F32 ? 4 : 8;
  // Rows of x per launch: what fits the staging buffer, at most kFusedMaxM.
  const int64_t rows = a.K > 0 ? std::min<int64_t>(kFusedMaxM, kFusedSmemMax / (a.K * 4)) : 0;
  // A plain or SwiGLU product whose x would need more than 48 KB of staging (the down
  // projection, K 18944) is not staged: the buffer would cut the blocks per SM and leave the 224
  // blocks of a 3584-row product unevenly spread (H200, 2026-11-29: 48.3 µs staged with SwiGLU
  // vs 41.7 µs for a SwiGLU pass + the plain kernel, which reads x through L1). SwiGLU then
  // returns false, so the caller runs that pass.
  const bool long_row = in != GemvInput::RmsNorm && a.K * 4 > 48 * 1024;
  const bool fused = rows > 0 && !long_row && a.K % E == 0 && a.K % 4 == 0 && aligned16(a.x) &&
                     aligned16(a.w) && (in != GemvInput::RmsNorm || aligned16(a.norm_w)) &&
                     a.N <= int64_t{kFusedRows} * 0x7fffffff;
  if (!fused) {
    if (in != GemvInput::Plain) return false;
    with_elem(a.wt, [&](auto wtag) {
      using W = decltype(wtag);
      gemv<W, float>(a.x, a.M, static_cast<const W*>(a.w), a.b, a.y, a.N, a.K, a.accumulate);
    });
    check_launch("linear (gemv)");
    return true;
  }
  const int64_t x_stride = in == GemvInput::SwiGlu ? 2 * a.K : a.K;
  for (int64_t m0 = 0; m0 < a.M; m0 += rows) {
    FusedGemvArgs c = a;
    c.M = std::min(rows, a.M - m0);
    c.x = a.x + m0 * x_stride;
    c.y = a.y + m0 * a.N;
    with_elem(a.wt, [&](auto wtag) {
      using W = decltype(wtag);
      switch (in) {
        case GemvInput::Plain:
          fused_gemv<W, GemvInput::Plain>(c);
          break;
        case GemvInput::RmsNorm:
          fused_gemv<W, GemvInput::RmsNorm>(c);
          break;
        case GemvInput::SwiGlu:
          fused_gemv<W, GemvInput::SwiGlu>(c);
          break;
      }
    });
    check_launch("fused linear (gemv)");
  }
  return true;
}

void launch_rms_norm_cast(const float* x, int64_t rows, int64_t n, const float* w, float eps,
                          void* y, Elem yt) {
  with_elem(yt, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_cast_kernel<T><<<static_cast<unsigned>(rows), 512>>>(x, n, w, eps, static_cast<T*>(y));
  });
  check_launch("rms_norm (cast)");
}

void launch_swiglu_cast(const float* gu, int64_t rows, int64_t I, void* y, Elem yt) {
  with_elem(yt, [&](auto tag) {
    using T = decltype(tag);
    swiglu_cast_kernel<T><<<grid_for(rows * I, 256), 256>>>(gu, rows, I, static_cast<T*>(y));
  });
  check_launch("swiglu (cast)");
}

void launch_add_bias(float* y, int64_t rows, int64_t N, const void* b, Elem bt) {
  with_elem(bt, [&](auto tag) {
    using B = decltype(tag);
    add_bias_kernel<B><<<grid_for(rows * N, 256), 256>>>(y, rows, N, static_cast<const B*>(b));
  });
  check_launch("linear (bias)");
}

void launch_im2col(const float* x, int64_t B, int64_t C, int64_t T, int64_t K, int64_t stride,
                   int64_t pad, int64_t To, float* col) {
  im2col_kernel<<<grid_for(B * To * C * K, 256), 256>>>(x, B, C, T, K, stride, pad, To, col);
  check_launch("conv1d (im2col)");
}

}  // namespace stepaudio::cuda
