// Convolution-family ops used by token2wav (flow encoder, DiT, HiFT vocoder): general Conv1d
// (asymmetric padding, dilation, groups), ConvTranspose1d, time padding and nearest upsampling.
// Activations are F32 [B, C, T]; weights may be F32, BF16 or F16. Each op checks its arguments
// (the message names the op and the shapes) and dispatches on the device of its input; the CPU
// kernels are in backend/cpu/conv_cpu.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stepaudio::ops {

struct Conv1dOptions {
  int64_t stride = 1, pad_left = 0, pad_right = 0, dilation = 1, groups = 1;
  // The fast token2wav mode: on the GPU the product runs in TF32 on the tensor cores (see
  // ops::linear_tf32). The CPU always computes in fp32.
  bool tf32 = false;
};

// PyTorch Conv1d with asymmetric zero padding. x F32 [B, C_in, T]; w [C_out, C_in/groups, K]
// (F32/BF16/F16); b [C_out] or undefined.
// -> F32 [B, C_out, (T + pad_left + pad_right - dilation*(K-1) - 1) / stride + 1]
Tensor conv1d_ex(const Tensor& x, const Tensor& w, const Tensor& b, const Conv1dOptions& o);

// PyTorch ConvTranspose1d (groups 1, dilation 1, output_padding 0). w [C_in, C_out, K].
// -> F32 [B, C_out, (T - 1) * stride - 2 * padding + K]
// tf32 as Conv1dOptions::tf32.
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                        int64_t padding, bool tf32 = false);

enum class PadMode { Zero, Reflect, Replicate };
// x [B, C, T] padded over T. Reflect is torch's (the edge sample is not repeated) and needs
// left, right < T; Replicate needs T >= 1.
Tensor pad_time(const Tensor& x, int64_t left, int64_t right, PadMode mode);

// [B, C, T] -> [B, C, T*factor], each sample repeated `factor` times (nn.Upsample nearest with an
// integer scale).
Tensor upsample_nearest_time(const Tensor& x, int64_t factor);

}  // namespace stepaudio::ops
