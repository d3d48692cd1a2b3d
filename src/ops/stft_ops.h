// STFT / iSTFT for small frame sizes (the HiFT vocoder's n_fft 16, hop 4), periodic Hann window,
// center=True with reflect padding, as torch.stft / torch.istft compute them. F32 in and out;
// dispatch on the input's device (CPU kernels in backend/cpu/stft_cpu).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stepaudio::ops {

// x F32 [B, N] (N > n_fft/2) -> F32 [B, 2*(n_fft/2+1), N/hop + 1]: rows 0..n_fft/2 the real parts,
// the rest the imaginary parts (HiFT's cat(real, imag)).
Tensor stft_small(const Tensor& x, int64_t n_fft, int64_t hop);

// The inverse of a magnitude / phase spectrogram: mag, phase F32 [B, n_fft/2+1, frames] ->
// F32 [B, (frames-1)*hop], i.e. torch.istft(mag * e^{i*phase}, n_fft, hop, n_fft, hann,
// center=True) with the window-envelope normalisation.
Tensor istft_small(const Tensor& mag, const Tensor& phase, int64_t n_fft, int64_t hop);

}  // namespace stepaudio::ops
