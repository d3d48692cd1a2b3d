#include "backend/cuda/runtime.h"

#include <cuda_runtime.h>

#include "backend/cuda/allocator.h"
#include "backend/cuda/check.h"
#include "core/error.h"

namespace stepaudio::cuda {

std::string init_problem() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not confused
    return cudaGetErrorString(e);
  }
  if (n == 0) return "no CUDA device";
  e = cudaFree(nullptr);  // forces context creation
  if (e != cudaSuccess) {
    cudaGetLastError();
    return cudaGetErrorString(e);
  }
  return {};
}

void* device_alloc(size_t bytes, int device) { return cached_alloc(bytes, device); }

void device_free(void* p, int device) { cached_free(p, device); }

void memset_zero(void* p, size_t bytes, int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaMemset(p, 0, bytes));
}

void finish_thread_work() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    return;
  }
  CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
  share_thread_blocks();
}

void copy(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes) {
  cudaMemcpyKind kind = dst_device
                            ? (src_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                            : (src_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

}  // namespace stepaudio::cuda
