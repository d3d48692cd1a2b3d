// CPU log-mel: kissfft real FFTs over all frames (threaded), the mel bank as one OpenBLAS GEMM,
// then log10 / max-8 floor / (x+4)/4. This is the numerical reference the CUDA path is tested
// against. The stages are exposed so the benchmark can time the FFT against a naive DFT.
#pragma once
#include <cstdint>
#include <span>

namespace stepaudio::cpu {

// The periodic Hann window of 400 points, computed in float32 like torch.hann_window.
const float* hann_window_400();

// Writes the windowed frames [t0, t1) of the padded chunk to out[(t - t0) * 400 + n]. The
// padded chunk is: samples, 479 zeros, then 200-sample reflect padding on both sides
// (torch.stft center=True). Reflection needs pad < length, which always holds here because the
// 479 appended zeros make the signal at least 479 samples long, so even a 0-sample chunk works.
void windowed_frames(std::span<const float> samples, int64_t t0, int64_t t1, float* out);

// Power spectra |X_k|^2, k = 0..200, of `count` windowed frames: out[i * 201 + k].
void power_spectra(const float* frames, int64_t count, float* out);

// The whole front end for one chunk: out is row-major [128, T], T = mel_frames(samples.size()).
void log_mel(std::span<const float> samples, float* out);

// log10(max(x, 1e-10)), the max-8 floor over all n values and (x+4)/4, in place; `x` holds the
// mel energies [128, T] of one chunk.
void normalize_log_mel(float* x, int64_t n);

// Copies samples [begin, end) of the clips laid end to end into dst (threads for large ranges):
// the host-side gather into the pinned staging buffer of the CUDA path.
void gather_clips(std::span<const std::span<const float>> clips, size_t begin, size_t end,
                  float* dst);

}  // namespace stepaudio::cpu
