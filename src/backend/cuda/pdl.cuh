// Programmatic dependent launch (Hopper) for the decode step's chain of small kernels: with it on,
// a kernel may be scheduled while the one before it drains; it may read only data no earlier
// kernel writes (the weights: it prefetches them) until pdl_wait() returns, which waits for the
// previous kernel's completion and the visibility of its writes. pdl_trigger() lets the next
// kernel be scheduled once every block of this one has passed it. Both are no-ops when the kernel
// was launched normally, so the kernels are correct either way; launch_pdl picks the launch.
// Off by default (STEPAUDIO_PDL=1 or cuda::set_gemv_pdl turns it on): see docs/PERFORMANCE.md.
#pragma once
#include <cuda_runtime.h>

namespace stepaudio::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launch_pdl launches with programmatic stream serialisation (linear_cuda.cu).
bool pdl_enabled();

// A plain launch on the calling thread's stream, or a programmatic dependent one when
// pdl_enabled() (same arguments, converted to the kernel's parameter types).
template <typename... P, typename... A>
void launch_pdl(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
  if (!pdl_enabled()) {
    kernel<<<grid, block, smem>>>(static_cast<P>(args)...);
    return;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = cudaStreamPerThread;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...);
}

}  // namespace stepaudio::cuda
