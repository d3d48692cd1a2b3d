// Short-time Fourier transforms for the small frame sizes of the HiFT vocoder (n_fft 16): a direct
// DFT with float64 twiddles and sums is exact enough and cheaper than an FFT plan at this size.
#pragma once
#include <cstdint>

namespace stepaudio::cpu {

// Periodic Hann window of n points, computed in float64 and rounded to float32 (scipy
// get_window("hann", n, fftbins=True) / torch.hann_window(n, periodic=True)).
void hann_periodic(int64_t n, float* w);

// torch.stft(x, n_fft, hop, n_fft, window=w, center=True, pad_mode="reflect", onesided) of one
// signal x [n] (n > n_fft / 2). re, im: [n_fft/2 + 1, frames] with frames = n / hop + 1.
void stft(const float* x, int64_t n, int64_t n_fft, int64_t hop, const float* w, float* re,
          float* im);

// torch.istft(mag * e^{i phase}, n_fft, hop, n_fft, window=w, center=True) of one spectrogram:
// mag, phase [n_fft/2 + 1, frames] -> y [(frames - 1) * hop]. The imaginary parts of the DC and
// Nyquist bins are ignored (irfft); the overlap-add is divided by the summed squared window where
// that exceeds 1e-8 (elsewhere by 1).
void istft(const float* mag, const float* phase, int64_t frames, int64_t n_fft, int64_t hop,
           const float* w, float* y);

}  // namespace stepaudio::cpu
