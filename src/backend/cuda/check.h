// Error checks for CUDA, cuBLAS and cuFFT calls: every failure becomes a stepaudio::Error that
// names the call and where it was made.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

#define CUDA_CHECK(expr)                                                                          \
  do {                                                                                            \
    cudaError_t err_ = (expr);                                                                    \
    if (err_ != cudaSuccess)                                                                      \
      ::stepaudio::fail("CUDA error {} in {} ({}:{})", cudaGetErrorString(err_), #expr, __FILE__, \
                        __LINE__);                                                                \
  } while (0)

// After a kernel launch: catches bad launch configurations immediately.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(expr)                                                                       \
  do {                                                                                           \
    auto st_ = (expr);                                                                           \
    if (static_cast<int>(st_) != 0)                                                              \
      ::stepaudio::fail("cuBLAS error {} in {} ({}:{})", static_cast<int>(st_), #expr, __FILE__, \
                        __LINE__);                                                               \
  } while (0)

#define CUFFT_CHECK(expr)                                                                       \
  do {                                                                                          \
    auto st_ = (expr);                                                                          \
    if (static_cast<int>(st_) != 0)                                                             \
      ::stepaudio::fail("cuFFT error {} in {} ({}:{})", static_cast<int>(st_), #expr, __FILE__, \
                        __LINE__);                                                              \
  } while (0)
