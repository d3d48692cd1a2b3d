// y = x @ w^T (+ bias) with f32 activations and F32/BF16/F16 weights read in place.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace stepaudio::cpu {

// x: [M, K] f32 row-major; w: [N, K] of type `wt`; bias: [N] f32 or null; y: [M, N] f32.
// Few rows (decode) stream the weights once through a fused convert+dot kernel; many rows
// (prefill, encoder) convert the weights in row blocks and run OpenBLAS sgemm on each block, so an
// f32 copy of a whole weight never exists.
void linear(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
            const float* bias, float* y);

// Rows of x up to which the streaming (GEMV) path is used.
inline constexpr int64_t kGemvMaxRows = 4;

}  // namespace stepaudio::cpu
