// CPU kernels for the convolution-family ops (ops/conv_ops.h) on contiguous f32 [C, T] rows of
// one batch item. Weights are read in their stored type (F32, BF16, F16).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace stepaudio::cpu {

struct Conv1dShape {
  int64_t c_in = 0, t_in = 0, c_out = 0, k = 0, t_out = 0;
  int64_t stride = 1, pad_left = 0, dilation = 1, groups = 1;
};

// One batch item: x [C_in, T_in] -> y [C_out, T_out]; w [C_out, C_in/groups, K] of type `wt`;
// bias [C_out] f32 or null. Samples outside [0, T_in) read as zero (the asymmetric zero padding
// is implied by pad_left and T_out).
void conv1d(const float* x, const void* w, DType wt, const float* bias, const Conv1dShape& s,
            float* y);

// One batch item of ConvTranspose1d: x [C_in, T_in] -> y [C_out, T_out] with
// y[co, t*stride - pad + k] += x[ci, t] * w[ci, co, k], for outputs inside [0, T_out).
void conv_transpose1d(const float* x, const void* w, DType wt, const float* bias, int64_t c_in,
                      int64_t t_in, int64_t c_out, int64_t k, int64_t stride, int64_t pad,
                      int64_t t_out, float* y);

// Pads `rows` rows of length t to t + left + right. mode: 0 zero, 1 reflect, 2 replicate.
void pad_rows(const float* x, int64_t rows, int64_t t, int64_t left, int64_t right, int mode,
              float* y);

// Repeats every sample `factor` times: x [rows, t] -> y [rows, t*factor].
void upsample_nearest(const float* x, int64_t rows, int64_t t, int64_t factor, float* y);

}  // namespace stepaudio::cpu
