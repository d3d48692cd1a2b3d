// The kernels of linear and conv1d: a GEMV for up to 8 rows of x that streams W once with
// 16-byte loads, several in flight per lane, fp32 accumulate, bias fused; the bias add after a
// cuBLAS product; im2col for conv1d. (The cuBLAS call itself is in ops_cuda.cpp.)
#include <cstdint>
#include <cstdlib>

#include "backend/cuda/common_cuda.cuh"

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
                float* __restrict__ y, int64_t N, int64_t K) {
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
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
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
    for (int m = 0; m < M; ++m) y[m * N + n] = acc[m] + bn;
  }
}

// Any shape and alignment: one warp per (row of x, output feature), scalar loads.
template <typename W, typename B>
__global__ void linear_generic_kernel(const float* x, const W* w, const B* bias, float* y,
                                      int64_t M, int64_t N, int64_t K) {
  const int64_t t = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (t >= M * N) return;
  const int64_t m = t / N, n = t % N;
  float acc = 0;
  for (int64_t k = lane; k < K; k += 32) acc = fmaf(load_f32(w, n * K + k), x[m * K + k], acc);
  acc = warp_sum(acc);
  if (lane == 0) y[t] = acc + (bias ? load_f32(bias, n) : 0.0f);
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

// Programmatic dependent launch (Hopper): the GEMV's blocks may start while the previous
// kernel's last blocks still run, prefetch weights, and wait in griddepcontrol.wait for its
// results. Off by default: inside the captured decode graph it measured neutral to slightly
// slower (H200, 2026-11-29: 190.7 vs 191.8 tok/s at batch 1); STEPAUDIO_PDL=1 turns it on.
bool pdl_supported() {
  int dev = 0, major = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  return major >= 9;
}

int g_pdl = -1;  // -1: not decided yet
bool pdl_enabled() {
  if (g_pdl < 0) {
    const char* e = std::getenv("STEPAUDIO_PDL");
    g_pdl = e && e[0] == '1' && pdl_supported();
  }
  return g_pdl == 1;
}

template <typename W, typename B, int M>
void gemv_m(const float* x, const W* w, const B* b, float* y, int64_t N, int64_t K) {
  const auto blocks = static_cast<unsigned>((N + kGemvWarps - 1) / kGemvWarps);
  if (!pdl_enabled()) {
    gemv_kernel<W, B, M><<<blocks, kGemvWarps * 32>>>(x, w, b, y, N, K);
    return;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(kGemvWarps * 32);
  cfg.stream = cudaStreamPerThread;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, gemv_kernel<W, B, M>, x, w, b, y, N, K);
}

template <typename W, typename B>
void gemv(const float* x, int64_t M, const W* w, const B* b, float* y, int64_t N, int64_t K) {
  constexpr int E = Vec<W>::kElems;
  const bool vec = K % E == 0 && K % 4 == 0 && aligned16(x) && aligned16(w);
  if (!vec) {
    linear_generic_kernel<W, B><<<grid_for(M * N * 32, 256), 256>>>(x, w, b, y, M, N, K);
    return;
  }
  switch (M) {
    case 1:
      gemv_m<W, B, 1>(x, w, b, y, N, K);
      break;
    case 2:
      gemv_m<W, B, 2>(x, w, b, y, N, K);
      break;
    case 3:
      gemv_m<W, B, 3>(x, w, b, y, N, K);
      break;
    case 4:
      gemv_m<W, B, 4>(x, w, b, y, N, K);
      break;
    case 5:
      gemv_m<W, B, 5>(x, w, b, y, N, K);
      break;
    case 6:
      gemv_m<W, B, 6>(x, w, b, y, N, K);
      break;
    case 7:
      gemv_m<W, B, 7>(x, w, b, y, N, K);
      break;
    default:
      gemv_m<W, B, 8>(x, w, b, y, N, K);
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
