// CUDA side of ops/fused_ops.h (arguments checked there). Outputs F32 or BF16.
#pragma once
#include "core/tensor.h"

namespace stepaudio::cuda {

Tensor layer_norm_to(const Tensor& x, const Tensor& w, const Tensor& b, float eps, DType out);
Tensor add_layer_norm_(Tensor& x, const Tensor& r, const Tensor& r_bias, const Tensor& w,
                       const Tensor& b, float eps, DType out);
void add_residual_(Tensor& x, const Tensor& r, const Tensor& r_bias);
Tensor bias_gelu(const Tensor& x, const Tensor& b, DType out);
Tensor bias_cast(const Tensor& x, const Tensor& b, DType out);
Tensor bias_cast_split(const Tensor& x, const Tensor& b, int64_t parts, DType out);

}  // namespace stepaudio::cuda
