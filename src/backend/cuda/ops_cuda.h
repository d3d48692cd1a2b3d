// CUDA kernels behind src/ops/ops.h, one function per op with the same meaning as the CPU
// reference. Arguments have been checked by ops.cpp (shapes, dtypes, one device); these only
// check what is specific to the GPU. Activations are F32 device tensors; weights may be F32, BF16
// or F16 and are read as stored. The weight dtype picks the compute precision of the large
// matrix products: F32 weights run in full fp32 (no TF32), BF16/F16 weights run on the tensor
// cores with the activations rounded to that type (fp32 accumulate). Products with at most 8 rows
// use a weight-streaming GEMV in fp32 arithmetic for every weight type.
// Every kernel runs on the legacy default stream, in order with Tensor::to's copies.
// Plain C++ so that the g++-compiled dispatch code can include it.
#pragma once
#include <cstdint>
#include <span>

#include "backend/cuda/kernels_cuda.h"
#include "core/tensor.h"

namespace stepaudio::cuda {

// F32 / BF16 / F16 -> the kernels' Elem; anything else fails naming the op.
Elem elem_of(const Tensor& t, const char* op);

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// Products with at most this many rows (0..8) use the GEMV kernel (benchmarks compare).
void set_gemv_max_rows(int64_t rows);
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding);
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps);
Tensor rms_norm(const Tensor& x, const Tensor& w, float eps);
void gelu_(Tensor& x);
void relu_(Tensor& x);
Tensor silu_mul(const Tensor& gate, const Tensor& up);
void add_(Tensor& a, const Tensor& b);
void rope_(Tensor& x, int64_t start_pos, double theta);
// q [B, Lq, H, D], k = v [B, Lk, Hkv, D]; key_bias [B, Lk] F32 or undefined. compute BF16 with
// Lq > 1 and head_dim 64 or 128 runs the tensor-core flash kernel; everything else the fp32 one.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, bool causal,
                 int64_t q_offset, const Tensor& key_bias, DType compute = DType::F32,
                 DType out_type = DType::F32);
Tensor embedding(const Tensor& table, std::span<const int32_t> ids);
Tensor avg_pool_time(const Tensor& x);
Tensor transpose_last2(const Tensor& x);
Tensor to_f32(const Tensor& x);
// A copy of a float tensor converted to `dtype` (F32, BF16 or F16), on the same device.
Tensor convert(const Tensor& x, DType dtype);

}  // namespace stepaudio::cuda
