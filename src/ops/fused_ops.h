// Fused forms of op sequences the encoder runs on every block, so that on CUDA the intermediates
// skip device memory and the activations that feed a bf16-weight linear are written in bf16
// directly (ops::linear takes BF16 activations). Each means exactly the unfused sequence of
// ops.h followed by a rounding to `out`; the CPU path computes that sequence (the reference).
#pragma once
#include "core/tensor.h"

namespace stepaudio::ops {

// layer_norm(x, w, b, eps) in `out` (F32 or BF16). x: F32 [..., n]; w, b: [n].
Tensor layer_norm_to(const Tensor& x, const Tensor& w, const Tensor& b, float eps, DType out);

// x += r (+ r_bias), then returns layer_norm(x, w, b, eps) in `out` (F32 or BF16): the residual
// add of a pre-LN block and the next norm in one pass. x, r: F32 [..., n]; r_bias: [n] or
// undefined; w, b: [n].
Tensor add_layer_norm_(Tensor& x, const Tensor& r, const Tensor& r_bias, const Tensor& w,
                       const Tensor& b, float eps, DType out);

// x += r + r_bias in place (a residual add with the bias of the linear that made r).
// x, r: F32 [..., n]; r_bias: [n].
void add_residual_(Tensor& x, const Tensor& r, const Tensor& r_bias);

// gelu(x + b) (exact erf GELU) in `out` (F32 or BF16). x: F32 [..., n]; b: [n].
Tensor bias_gelu(const Tensor& x, const Tensor& b, DType out);

// x + b in `out` (F32 or BF16); b: [n] or undefined (then only the rounding). The bias of a linear
// layer and the rounding of its output for a bf16 consumer (attention) in one pass.
Tensor bias_cast(const Tensor& x, const Tensor& b, DType out);

// bias_cast, then the last dimension cut into `parts` equal pieces stacked in front:
// x [..., parts * n] -> [parts, ..., n] (the fused q|k|v projection's output as q, k, v, each
// contiguous: y.slice_rows(p, p + 1)).
Tensor bias_cast_split(const Tensor& x, const Tensor& b, int64_t parts, DType out);

}  // namespace stepaudio::ops
