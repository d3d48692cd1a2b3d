// CUDA kernels behind src/ops/decode_ops.h (arguments already checked there). The launchers
// read positions, slots and ids from device memory and never synchronise, so a step built from
// them can be captured in a CUDA graph.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace stepaudio::cuda {

Tensor embedding_rows(const Tensor& table, const Tensor& ids);
Tensor add_rms_norm(Tensor& x, const Tensor& r, const Tensor& w, float eps);
Tensor qkv_rope_append(const Tensor& qkv, int64_t heads, int64_t kv_heads, const Tensor& positions,
                       const Tensor& slots, Tensor& k_cache, Tensor& v_cache, double theta);
Tensor decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const Tensor& slots, const Tensor& positions, float scale);
Tensor swiglu(const Tensor& gu);
Tensor rms_norm_linear(const Tensor& x, const Tensor& norm_w, float eps, const Tensor& w,
                       const Tensor& bias);
void linear_add_(Tensor& x, const Tensor& a, const Tensor& w);
void swiglu_linear_add_(Tensor& x, const Tensor& gu, const Tensor& w);
// The cuBLAS product of ops_cuda.cpp: y (F32 [M, N]) (+)= x2d [M, K] W[N, K]^T, x2d converted to
// W's element type unless it has it.
void blas_linear_into(const Tensor& x2d, const Tensor& w, float* y, bool accumulate);
void advance_positions(Tensor& positions);
Tensor concat_cols(const std::vector<Tensor>& parts, int64_t total);
void sample_tokens(const Tensor& logits, const Tensor& params, Tensor& presence, Tensor& steps,
                   Tensor& ids);

}  // namespace stepaudio::cuda
