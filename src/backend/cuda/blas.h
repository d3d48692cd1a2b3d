// The cuBLAS handle of the calling thread for the current device (cuBLAS handles must not be
// shared between threads that use them at once). Created on first use, bound to the legacy
// default stream, default math mode (no TF32: fp32 products stay fp32).
#pragma once
#include <cublas_v2.h>

namespace stepaudio::cuda {

cublasHandle_t blas_handle();

}  // namespace stepaudio::cuda
