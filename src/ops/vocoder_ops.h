// Ops of the HiFT vocoder that are not convolutions or activations: the NSF harmonic source, and
// the small helpers its forward and streaming need. F32, dispatched on the input's device (CPU
// kernels in backend/cpu/vocoder_cpu).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stepaudio::ops {

struct NsfOptions {
  int64_t upsample = 480;  // samples per f0 frame
  float sample_rate = 24000.f;
  float sine_amp = 0.1f, noise_std = 0.003f, voiced_threshold = 10.f;
};

// SineGen2 (CosyVoice2's 24 kHz NSF sine generator) on one f0 track. f0 F32 [F] in Hz ->
// F32 [F*upsample, dim]: harmonic h (1..dim) is sin(phase_h)*sine_amp where voiced (f0 >
// threshold), plus noise*(noise_std if voiced else sine_amp/3). The phase follows the reference's
// float32 order: increments (f0*h/sr) % 1, linearly down-sampled to frames, cumulated, times 2*pi,
// times upsample, linearly up-sampled (align_corners=False). rand_ini F32 [dim] (initial phases;
// element 0 unused) and noise F32 [F*upsample, dim] (standard normal draws) may be undefined,
// meaning zeros.
Tensor nsf_sines(const Tensor& f0, int64_t dim, const NsfOptions& o, const Tensor& rand_ini,
                 const Tensor& noise);

void abs_(Tensor& x);
void clamp_(Tensor& x, float lo, float hi);
// dst = src, element for element (same numel; dst may be a row-slice view).
void copy_(Tensor& dst, const Tensor& src);
// [C, Ta] and [C, Tb] -> [C, Ta + Tb] (either part may have no columns).
Tensor concat_time(const Tensor& a, const Tensor& b);
// Columns [begin, end) of x [C, T] -> [C, end - begin] (a copy).
Tensor slice_time(const Tensor& x, int64_t begin, int64_t end);
// head, tail F32 [n] -> head * w[:n] + tail * w[n:], w = np.hamming(2n) (the streaming vocoder's
// fade from the previous chunk's tail into the new chunk).
Tensor hamming_crossfade(const Tensor& head, const Tensor& tail);

}  // namespace stepaudio::ops
