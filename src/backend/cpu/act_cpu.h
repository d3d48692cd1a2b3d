// CPU kernels for the pointwise activations of ops/act_ops.h, on f32 buffers in place.
#pragma once
#include <cstdint>

namespace stepaudio::cpu {

enum class Act { LeakyRelu, Elu, Silu, Mish, Tanh, GeluTanh, Exp, Sin, Scale };

// x[i] = act(x[i]); `p` is the slope (LeakyRelu), alpha (Elu) or factor (Scale), unused otherwise.
void activation(Act act, float* x, int64_t n, float p);
// a[i] *= b[i]
void mul(float* a, const float* b, int64_t n);
// x [B, C, T] in place: x + 1/(alpha[c]+1e-9) * sin(alpha[c]*x)^2
void snake(float* x, const float* alpha, int64_t B, int64_t C, int64_t T);

}  // namespace stepaudio::cpu
