// Pointwise activations and small element-wise ops used by token2wav (flow + HiFT). All work in
// place on F32 tensors of any shape unless said; like ops.h they validate their arguments and
// dispatch on the device of their input (CPU kernels in backend/cpu/act_cpu).
#pragma once
#include "core/tensor.h"

namespace stepaudio::ops {

void leaky_relu_(Tensor& x, float slope);
void elu_(Tensor& x, float alpha = 1.f);
void silu_(Tensor& x);
void mish_(Tensor& x);
void tanh_(Tensor& x);
void gelu_tanh_(Tensor& x);  // GELU, tanh approximation
void exp_(Tensor& x);
void sin_(Tensor& x);
void scale_(Tensor& x, float s);
void mul_(Tensor& a, const Tensor& b);  // same shape
// x [B, C, T], alpha [C]: x + 1/(alpha+1e-9) * sin(alpha*x)^2 (HiFT's Snake, alpha not logscale)
void snake_(Tensor& x, const Tensor& alpha);

}  // namespace stepaudio::ops
