// The op set the models are written against. Activations are F32; weights may be F32, BF16 or
// F16 and are upcast inside the kernels (never copied whole). Every op checks its arguments and
// fails with a message naming the op and the offending shape, then dispatches on the device of
// its input: the CPU kernels in backend/cpu are the numerical reference; CUDA kernels plug in at
// the marked dispatch point in ops.cpp.
#pragma once
#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace stepaudio::ops {

// y = x @ w^T + b. x: F32 [..., in], or BF16 (activations already rounded for bf16 weights);
// w: [out, in]; b: [out] or undefined. -> F32 [..., out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

// PyTorch Conv1d. x: F32 [B, C_in, T]; w: [C_out, C_in, K]; b: [C_out] or undefined.
// -> F32 [B, C_out, (T + 2*padding - K) / stride + 1]
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding);

// Over the last axis. layer_norm: affine, biased variance; rms_norm: HF Qwen2RMSNorm (f32).
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps = 1e-5f);
Tensor rms_norm(const Tensor& x, const Tensor& w, float eps);

// Activations. gelu is the exact erf form (torch default). The _ forms work in place.
Tensor gelu(const Tensor& x);
void gelu_(Tensor& x);
Tensor relu(const Tensor& x);
void relu_(Tensor& x);
// SwiGLU: silu(gate) * up, same shapes.
Tensor silu_mul(const Tensor& gate, const Tensor& up);

// a + b, where b's shape equals the trailing dims of a (so it broadcasts over the leading ones);
// b may be F32, BF16 or F16.
Tensor add(const Tensor& a, const Tensor& b);
void add_(Tensor& a, const Tensor& b);

// RoPE in place, NeoX rotate-half layout. x: F32 [L, heads, head_dim]; row l is at position
// start_pos + l.
void rope_(Tensor& x, int64_t start_pos, double theta);

struct AttentionOptions {
  float scale = 1.0f;    // applied to q.k
  bool causal = false;   // query i sees keys j <= q_offset + i
  int64_t q_offset = 0;  // position of query 0 among the keys (the KV cache length before)
  Tensor key_bias;       // optional F32 [B, Lk], added to the scaled scores
  // F32: fp32 arithmetic. BF16: the CUDA kernel for many queries rounds q, k, v and the
  // probabilities to bf16 for the tensor cores (softmax, sums and output in fp32), as the bf16
  // model's linear layers round their inputs. The CPU reference always computes in fp32.
  DType compute = DType::F32;
  // F32, or BF16: the output rounded once to bf16 (what a bf16 linear layer after it reads).
  DType out = DType::F32;
};
// Softmax attention with grouped KV heads. q: F32 [B, Lq, H, D]; k, v: F32 [B, Lk, Hkv, D] with
// H % Hkv == 0; each of q, k, v may also be BF16 (already rounded for compute BF16; upcast
// exactly otherwise). -> [B, Lq, H, D] of type opt.out
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt);

// Rows of `table` ([rows, dim], F32/BF16/F16) -> F32 [ids.size(), dim]. Ids out of range fail.
Tensor embedding(const Tensor& table, std::span<const int32_t> ids);

// AvgPool1d(kernel 2, stride 2) over time: F32 [B, T, C] -> [B, T/2, C] (floor).
Tensor avg_pool_time(const Tensor& x);

// F32 [B, A, C] -> [B, C, A] (the permutes around the convolutions).
Tensor transpose_last2(const Tensor& x);

// A contiguous F32 copy of a float tensor (upcasting BF16/F16).
Tensor to_f32(const Tensor& x);

}  // namespace stepaudio::ops
