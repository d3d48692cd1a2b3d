// The Slaney-style mel filterbank the official front end uses: librosa.filters.mel with its
// defaults (htk=False mel scale, norm="slaney" area normalisation), i.e. Whisper's
// mel_filters.npz. Computed here rather than shipped so that no binary asset is needed.
#pragma once
#include <vector>

namespace stepaudio {

// Row-major [n_mels, n_fft/2 + 1] float32 weights for a real FFT of n_fft points at `sample_rate`,
// covering [fmin, fmax] Hz (fmax <= 0 means sample_rate / 2). Math in float64, as librosa does,
// rounded to float32 at the same two points librosa rounds. Throws Error on bad arguments.
std::vector<float> slaney_mel_filterbank(int sample_rate, int n_fft, int n_mels, double fmin = 0.0,
                                         double fmax = -1.0);

// The 128 x 201 bank for 16 kHz, n_fft 400 (computed once, immutable afterwards).
const std::vector<float>& mel_filters_128();

// Slaney mel scale: linear below 1 kHz, logarithmic above (librosa hz_to_mel / mel_to_hz).
double hz_to_mel_slaney(double hz);
double mel_to_hz_slaney(double mel);

}  // namespace stepaudio
