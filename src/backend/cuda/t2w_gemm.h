// The fast token2wav mode's matrix product: y[M, N] = x[M, K] w[N, K]^T + bias, F32 in and out,
// TF32 on the tensor cores (fp32 accumulate) with the bias added in cuBLASLt's epilogue. Runs on
// the thread's default stream; the current device must be the operands'. Plain C++.
#pragma once
#include <cstdint>

namespace stepaudio::cuda {

// bias may be null. Shapes must fit cuBLAS's int range (checked, fails naming `op`).
void gemm_tf32_bias(const float* x, int64_t M, int64_t K, const float* w, int64_t N,
                    const float* bias, float* y, const char* op);

// For b < batch: y_b[M, N] += x_b[M, K] w[N, K]^T, x_b = x + b*sx, y_b = y + b*sy (element
// offsets; rows contiguous, leading dimensions K and N; one w for all), TF32 products with fp32
// accumulation into the existing y. cuBLAS with its fixed workspace, so it can be captured.
void gemm_tf32_acc_batched(const float* x, int64_t M, int64_t K, int64_t sx, const float* w,
                           int64_t N, float* y, int64_t sy, int64_t batch, const char* op);

}  // namespace stepaudio::cuda
