// CPU kernels for ops/flow_ops.h, on contiguous f32 buffers.
#pragma once
#include <cstdint>

namespace stepaudio::cpu {

void rel_pos_table(int64_t size, int64_t d_model, float* out);

struct RelAttentionShape {
  int64_t batch, q_len, kv_len, heads, head_dim;
};
// See ops::rel_pos_attention. p holds 2*kv_len-1 rows of [heads, head_dim].
void rel_pos_attention(const float* q, const float* k, const float* v, const float* p,
                       const float* u, const float* w, const RelAttentionShape& s, float* out);

void timestep_embedding(const float* t, int64_t B, int64_t dim, float scale, float max_period,
                        float* out);

// x [B, T, C] -> y; shift, scale [B, C]
void modulated_layer_norm(const float* x, int64_t B, int64_t T, int64_t C, const float* shift,
                          const float* scale, float eps, float* y);
// x [B, T, C] += gate[b] * y
void gated_add(float* x, const float* gate, const float* y, int64_t B, int64_t T, int64_t C);

// rows of length n: y = x / max(||x||, eps)
void l2_normalize(const float* x, int64_t rows, int64_t n, float eps, float* y);

// Copies an [outer, inner] block of rows into a strided destination: dst[o*dst_stride + i] =
// src[o*src_stride + i] for i < inner.
void copy_strided(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                  int64_t outer, int64_t inner);

// out [channels, end-begin]; see ops::frame_noise.
void frame_noise(uint64_t seed, int64_t channels, int64_t begin, int64_t end, float* out);

void axpy(float* y, float a, const float* x, int64_t n);
// out[i] = rng::counter_normal(mix64(seed), offset + i) for i < n; see ops::counter_normal.
void counter_normal(uint64_t seed, int64_t offset, int64_t n, float* out);
// x [B, n*C] -> out [n, B, C]; see ops::chunks_last.
void chunks_last(const float* x, int64_t B, int64_t n, int64_t C, float* out);

// y [rows, T]: y[r][t] = x[r]
void repeat_cols(const float* x, int64_t rows, int64_t T, float* y);

}  // namespace stepaudio::cpu
