// Element conversions for CPU kernels: weights are stored as BF16/F16/F32 and computed in f32.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace stepaudio::cpu {

// dst[i] = float(src[i]) for n elements of type `dt` (F32, BF16 or F16). Vectorised with
// AVX2/F16C when the CPU has them; the scalar path gives the same (exact) values.
void to_f32(const void* src, DType dt, float* dst, int64_t n);

// True when the AVX2+FMA+F16C kernels can run on this CPU (checked once).
bool has_avx2();

}  // namespace stepaudio::cpu
