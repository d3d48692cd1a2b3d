// The ops of the batched decode step (Qwen2LM::decode_step). Unlike ops.h, every per-sequence
// quantity that changes from one token to the next (token ids, positions, cache slots) is a
// tensor on the compute device, not a host integer: a captured CUDA graph then replays the same
// launches every token and only the contents of those tensors change. The CPU kernels are the
// reference; the CUDA ones plug in at the same dispatch point as in ops.cpp.
//
// The KV cache of a batch: per layer K and V buffers [slots, max_len, kv_heads, head_dim], F32 or
// BF16. Sequence b of a step lives in slot slots[b] and its new token is at position
// positions[b] (= the number of cached rows before the step).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace stepaudio::ops {

// Rows of `table` ([rows, dim], F32/BF16/F16) for ids I32 [n] on the table's device -> F32
// [n, dim]. Ids outside the table read row 0 on the GPU (they cannot be checked without a sync;
// the sampler never produces them) and fail on the CPU.
Tensor embedding_rows(const Tensor& table, const Tensor& ids);

// x += r, then returns rms_norm(x, w, eps) (HF Qwen2RMSNorm). x, r: F32 [rows, n].
Tensor add_rms_norm(Tensor& x, const Tensor& r, const Tensor& w, float eps);

// qkv: F32 [B, (H + 2 Hkv) * D], the fused q|k|v projection with its bias. Applies RoPE (NeoX,
// theta) at positions[b] to q and k, writes k and v into row positions[b] of slot slots[b] of
// k_cache / v_cache ([S, max_len, Hkv, D], converted to the cache type) and returns q F32
// [B, H, D].
Tensor qkv_rope_append(const Tensor& qkv, int64_t heads, int64_t kv_heads, const Tensor& positions,
                       const Tensor& slots, Tensor& k_cache, Tensor& v_cache, double theta);

// One query per sequence: q F32 [B, H, D] attends to rows [0, positions[b]] (inclusive) of slot
// slots[b]; GQA. -> F32 [B, H * D].
Tensor decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const Tensor& slots, const Tensor& positions, float scale);

// gu: F32 [B, 2 I] = gate | up (the fused gate/up projection) -> silu(gate) * up, F32 [B, I].
Tensor swiglu(const Tensor& gu);

// The decode step's projections with the op before and the residual add after folded in (one
// GEMV each at batch 1 on the GPU). Weights: F32/BF16/F16 [N, K]; everything else F32.
// linear(rms_norm(x, norm_w, eps), w, bias): x [..., K], norm_w [K], bias [N] or undefined ->
// F32 [..., N].
Tensor rms_norm_linear(const Tensor& x, const Tensor& norm_w, float eps, const Tensor& w,
                       const Tensor& bias = {});
// x += linear(a, w): a [..., K], x [..., N] with the same leading dims; a must not overlap x.
void linear_add_(Tensor& x, const Tensor& a, const Tensor& w);
// x += linear(silu(gate) * up, w) with gu = gate | up [..., 2 I], w [N, I], x [..., N]; gu must
// not overlap x.
void swiglu_linear_add_(Tensor& x, const Tensor& gu, const Tensor& w);

// Row-wise concatenation of F32 [B, n_i] tensors -> F32 [B, sum n_i] (the CPU decode step's
// stand-in for the fused projections).
Tensor concat_cols(const std::vector<Tensor>& parts);

// positions[b] += 1 (I32), after a step has appended its row.
void advance_positions(Tensor& positions);

}  // namespace stepaudio::ops
