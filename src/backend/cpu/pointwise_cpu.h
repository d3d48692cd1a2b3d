// Element-wise and row kernels on f32 buffers (in place allowed where src == dst).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace stepaudio::cpu {

void gelu(const float* x, float* y, int64_t n);  // exact: x/2 * (1 + erf(x/sqrt(2)))
void relu(const float* x, float* y, int64_t n);
// y = silu(gate) * up = gate / (1 + exp(-gate)) * up
void silu_mul(const float* gate, const float* up, float* y, int64_t n);
// a[i] += b[i % nb] for n elements; b is F32, BF16 or F16 (broadcast over leading rows).
void add(float* a, int64_t n, const void* b, DType bt, int64_t nb);

// RoPE, NeoX rotate-half layout, in place on x [L, heads, head_dim]; row l has position
// start + l. Angles follow HF: inv_freq = 1 / theta^(2i/d) in f32, angle = f32(pos) * inv_freq.
void rope(float* x, int64_t L, int64_t heads, int64_t head_dim, int64_t start, double theta);

// out[i] = table[ids[i]] for a [rows, dim] table of type `dt`.
void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n, float* out);

// x [B, T, C] -> y [B, T/2, C]: mean of time steps 2t and 2t+1 (floor, as AvgPool1d(2, 2)).
void avg_pool2_time(const float* x, int64_t B, int64_t T, int64_t C, float* y);

// x [B, C, T] -> y [B, T, C]
void transpose_last2(const float* x, int64_t B, int64_t C, int64_t T, float* y);

// im2col for Conv1d: x [C, T] (one batch item) -> col [T_out, C*K] with zero padding, so that
// conv = col @ W^T with W viewed as [C_out, C*K].
void im2col_1d(const float* x, int64_t C, int64_t T, int64_t K, int64_t stride, int64_t pad,
               int64_t T_out, float* col);

}  // namespace stepaudio::cpu
