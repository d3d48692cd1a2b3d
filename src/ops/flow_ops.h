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

}  // namespace stepaudio::ops
