// Ops the token2wav flow model (conformer encoder, DiT estimator, CFM sampler) needs beyond
// ops.h / act_ops.h / conv_ops.h. Activations are F32; like ops.h every op checks its arguments
// (the message names the op and the shapes) and dispatches on the device of its input (CPU kernels
// in backend/cpu/flow_cpu, CUDA ones in backend/cuda/t2w_ops_cuda).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace stepaudio::ops {

// ESPnet's relative positional table (EspnetRelPositionalEncoding.position_encoding(size)):
// [2*size-1, d_model], row r for relative position size-1-r; even columns sin(p*w_k), odd
// columns cos(p*w_k), w_k = exp(-2k*ln(10000)/d_model), computed in float32 as torch does.
Tensor rel_pos_table(int64_t size, int64_t d_model);

// Relative-position self-attention (Transformer-XL / WeNet RelPositionMultiHeadedAttention after
// the projections). q [B, T1, H, D]; k, v [B, T2, H, D] with T1 <= T2 (the queries are the last T1
// of the T2 key positions, as with a cache); p [2*T2-1, H, D] the projected table; u, w [H, D]
// (pos_bias_u, pos_bias_v). score(i, j) = ((q_i+u).k_j + (q_i+w).p[T1-1+j-i]) / sqrt(D), which
// is WeNet's rel_shift; softmax over all j (no mask). -> [B, T1, H, D]
Tensor rel_pos_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                         const Tensor& u, const Tensor& w);

// Sinusoidal timestep embedding (DiT TimestepEmbedder): t [B] -> [B, dim] =
// cat(cos(t*scale*f_k), sin(t*scale*f_k)), f_k = exp(-ln(max_period)*k/(dim/2)); dim even.
Tensor timestep_embedding(const Tensor& t, int64_t dim, float scale, float max_period);

// adaLN: LayerNorm without affine parameters over the last axis, then x*(1+scale)+shift with
// shift / scale per batch row. x [B, T, C]; shift, scale [B, C] -> [B, T, C]
Tensor modulated_layer_norm(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);

// Gated residual: x += gate[b] * y per batch row. x, y [B, T, C]; gate [B, C].
void gated_add_(Tensor& x, const Tensor& gate, const Tensor& y);

// gated_add_(x, gate, y) followed by modulated_layer_norm(x, shift, scale, eps), the DiT's
// "residual, then the next adaLN": on the GPU one pass over each row. Same arguments and results
// as the two ops (x is updated in place; the return value is the normalised new x).
Tensor gated_add_modulated_ln_(Tensor& x, const Tensor& gate, const Tensor& y, const Tensor& shift,
                               const Tensor& scale, float eps);

// Mish(layer_norm(x, w, b, eps)) (the DiT conv block's norm and activation): on the GPU with F32
// w, b one pass over each row; the same values as the two ops within float rounding.
Tensor layer_norm_mish(const Tensor& x, const Tensor& w, const Tensor& b, float eps);

// torch.chunk(x, n, dim=-1)[i] as a contiguous copy: x [B, n*C] -> [B, C].
Tensor chunk_last(const Tensor& x, int64_t n, int64_t i);

// F.normalize over the last axis: x / max(||x||_2, eps).
Tensor l2_normalize(const Tensor& x, float eps = 1e-12f);

// Concatenation of F32 tensors along `axis` (negative counts from the end); all other dims equal.
Tensor concat_axis(const std::vector<Tensor>& xs, int axis);

// Elements [begin, end) along `axis` as a contiguous copy.
Tensor slice_axis(const Tensor& x, int axis, int64_t begin, int64_t end);

// x [B, C] -> [B, C, T] (each row repeated along time).
Tensor repeat_time(const Tensor& x, int64_t T);

// Frame-indexed standard-normal noise: [channels, end-begin], column f holding frame begin+f.
// A frame's values depend only on (seed, frame), so a stream can draw any window of one fixed
// table (as the official CFM indexes its randn(1, 80, 30000) buffer by absolute frame). Frame f:
// std::mt19937_64 seeded with splitmix64(seed ^ splitmix64(f)); channels in pairs from two
// uniforms u1, u2 = (draw >> 11) * 2^-53 by Box-Muller: sqrt(-2 ln(1-u1)) * (cos, sin)(2 pi u2).
Tensor frame_noise(uint64_t seed, int64_t channels, int64_t begin, int64_t end);

// y += a * x (same shape).
void axpy_(Tensor& y, float a, const Tensor& x);

// ops::linear for the fast token2wav mode: on the GPU with F32 x and weights the product runs on
// the tensor cores in TF32 (operands rounded to a 10-bit mantissa, fp32 accumulate) with the bias
// added in the GEMM's epilogue. Everywhere else (CPU, BF16/F16 weights) it is ops::linear.
Tensor linear_tf32(const Tensor& x, const Tensor& w, const Tensor& b = {});

// The DiT's CausalConv1d (stride 1, dilation 1, K-1 frames of left context) on channels-last
// activations: x F32 [B, T, C]; w [C_out, C, K]; b [C_out] or undefined -> [B, T, C_out]. With
// `ctx` the left context is *ctx (F32 [B, C, K-1], channels-first; undefined: zeros) and *ctx is
// replaced by the last K-1 frames of [context; x]; without, zeros. The same numbers as transposing
// to [B, C, T], padding or concatenating the context, conv1d_ex and transposing back (which is
// what the CPU computes); with tf32 and F32 weights the GPU runs one channels-last im2col and one
// TF32 GEMM with the bias in its epilogue, no transposes. With `taps` as well (conv_taps(w), F32
// on the GPU) it writes no im2col: y = b + sum_j W_j x[t - (K-1) + j] as K TF32 products of
// row-shifted views of x, accumulated in place (the context's few products on their own).
Tensor causal_conv_cl(const Tensor& x, const Tensor& w, const Tensor& b, Tensor* ctx, bool tf32,
                      const Tensor& taps = {});

// A conv weight [C_out, C, K] as its K taps: [K, C_out, C], tap j the matrix W_j = w[:, :, j]
// (a contiguous copy, on w's device).
Tensor conv_taps(const Tensor& w);

// The DiT's fused q/k/v projection split into heads, with the per-head LayerNorms of q and k:
// qkv F32 [B, T, 3*H*D] (the q, k and v blocks in that order) -> {q, k, v}, each F32
// [B, T, H, D]; q normalised over D with (qn_w, qn_b), k with (kn_w, kn_b), all F32 [D]; v as is.
// The same as slicing the blocks and calling layer_norm (the CPU does exactly that). out BF16:
// the three results rounded to bf16 (nearest even) as they are written, for the bf16 flash
// attention, which then converts nothing.
std::vector<Tensor> split_qkv_norm(const Tensor& qkv, int64_t H, int64_t D, const Tensor& qn_w,
                                   const Tensor& qn_b, const Tensor& kn_w, const Tensor& kn_b,
                                   float eps, DType out = DType::F32);

// All n chunks of the last axis at once: x F32 [B, n*C] -> [n, B, C] (row block i holds
// torch.chunk(x, n, -1)[i]), so slice_rows(i, i+1).reshape({B, C}) gives chunk i without a copy.
Tensor chunks_last(const Tensor& x, int64_t n);

// Counter-based standard-normal draws on `device`: element i (row-major) of the result depends only
// on (seed, offset + i). Pair p = (offset + i) / 2 hashes to 64 bits h = mix(mix(seed) + (p + 1) *
// 0x9E3779B97F4A7C15) (mix: the splitmix64 finaliser); u1 = (h >> 40 + 0.5) / 2^24,
// u2 = (h >> 16 & 0xFFFFFF) / 2^24; Box-Muller in float32: sqrt(-2 ln u1) * (cos, sin)(2 pi u2) for
// the even / odd counter. The CPU and GPU compute the same formula (the results agree to a few
// ulps of the float math functions, not bit for bit). offset >= 0.
Tensor counter_normal(uint64_t seed, int64_t offset, const Shape& shape, Device device);

// frame_noise's counterpart on the counter generator, for the fast mode: column f of the result
// [channels, end-begin] is frame begin+f, element (c, frame) = counter_normal's element
// frame*channels + c, so a frame's values again depend only on (seed, frame).
Tensor frame_noise_fast(uint64_t seed, int64_t channels, int64_t begin, int64_t end, Device device);

}  // namespace stepaudio::ops
