#include "backend/cuda/blas.h"

#include <map>
#include <memory>
#include <vector>

#include "backend/cuda/check.h"

namespace stepaudio::cuda {

namespace {
struct Handles {
  std::map<int, cublasHandle_t> by_device;
  std::vector<void*> workspaces;
  ~Handles() {
    // At thread exit (a speech worker's, say); the runtime may already be gone at process exit,
    // so errors are ignored.
    for (auto& [dev, h] : by_device) cublasDestroy(h);
    for (void* ws : workspaces) cudaFree(ws);
  }
};
}  // namespace

cublasHandle_t blas_handle() {
  thread_local Handles handles;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  auto it = handles.by_device.find(dev);
  if (it != handles.by_device.end()) return it->second;
  cublasHandle_t h = nullptr;
  CUBLAS_CHECK(cublasCreate(&h));
  CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  // The ops' stream (the thread's default stream), so that a decode step can be captured.
  CUBLAS_CHECK(cublasSetStream(h, cudaStreamPerThread));
  // A fixed workspace: cuBLAS must not allocate while a decode step is being captured. 32 MiB
  // is what cuBLAS recommends for Hopper; kept for the handle's (the thread's) lifetime.
  void* ws = nullptr;
  constexpr size_t kWorkspace = size_t{32} << 20;
  CUDA_CHECK(cudaMalloc(&ws, kWorkspace));
  handles.workspaces.push_back(ws);
  CUBLAS_CHECK(cublasSetWorkspace(h, ws, kWorkspace));
  handles.by_device[dev] = h;
  return h;
}

}  // namespace stepaudio::cuda
