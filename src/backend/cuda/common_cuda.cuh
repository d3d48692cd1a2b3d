// Device helpers shared by the op kernels: element loads, warp/block reductions, launch sizing,
// and dispatch from Elem to the element type of a templated kernel. No fmt/core headers here
// (see kernels_cuda.h).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels_cuda.h"

namespace stepaudio::cuda {

__device__ __forceinline__ float load_f32(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_f32(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ float load_f32(const __half* p, int64_t i) { return __half2float(p[i]); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of at most 1024 threads; every thread gets the result. `scratch` holds 32
// floats of shared memory.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  v = lane < nw ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

// Grid-stride loops take any n; the grid is capped so that huge n stays launchable.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t g = (n + threads - 1) / threads;
  if (g > (int64_t{1} << 20)) g = int64_t{1} << 20;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

// Calls f(T{}) with T the element type of `e`.
template <typename F>
void with_elem(Elem e, F&& f) {
  switch (e) {
    case Elem::F32:
      f(float{});
      return;
    case Elem::BF16:
      f(__nv_bfloat16{});
      return;
    case Elem::F16:
      f(__half{});
      return;
  }
}

}  // namespace stepaudio::cuda
