#include "audio/mel_filters.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace stepaudio {

namespace {
constexpr double kFSp = 200.0 / 3.0;  // Hz per mel in the linear part
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kFSp;  // 15
const double kLogStep = std::log(6.4) / 27.0;
}  // namespace

double hz_to_mel_slaney(double hz) {
  if (hz >= kMinLogHz) return kMinLogMel + std::log(hz / kMinLogHz) / kLogStep;
  return hz / kFSp;
}

double mel_to_hz_slaney(double mel) {
  if (mel >= kMinLogMel) return kMinLogHz * std::exp(kLogStep * (mel - kMinLogMel));
  return kFSp * mel;
}

std::vector<float> slaney_mel_filterbank(int sample_rate, int n_fft, int n_mels, double fmin,
                                         double fmax) {
  if (sample_rate <= 0 || n_fft < 2 || n_mels < 1)
    fail(
        "mel filterbank: bad arguments sample_rate={} n_fft={} n_mels={} (all must be positive, "
        "n_fft >= 2)",
        sample_rate, n_fft, n_mels);
  if (fmax <= 0) fmax = sample_rate / 2.0;
  if (!(fmin >= 0 && fmin < fmax))
    fail("mel filterbank: need 0 <= fmin < fmax, got fmin={} fmax={}", fmin, fmax);
  const int n_bins = n_fft / 2 + 1;

  // np.fft.rfftfreq(n_fft, 1/sr): k * (1 / (n * d)), evaluated in that order for identical bits.
  const double bin_hz = 1.0 / (n_fft * (1.0 / sample_rate));
  std::vector<double> fft_hz(static_cast<size_t>(n_bins));
  for (int k = 0; k < n_bins; ++k) fft_hz[static_cast<size_t>(k)] = k * bin_hz;

  // n_mels + 2 band edges equally spaced in mel (np.linspace: i * step + start, exact last value).
  const int n_edges = n_mels + 2;
  const double mel_lo = hz_to_mel_slaney(fmin), mel_hi = hz_to_mel_slaney(fmax);
  const double step = (mel_hi - mel_lo) / (n_edges - 1);
  std::vector<double> edge_hz(static_cast<size_t>(n_edges));
  for (int i = 0; i < n_edges; ++i) {
    const double m = i == n_edges - 1 ? mel_hi : i * step + mel_lo;
    edge_hz[static_cast<size_t>(i)] = mel_to_hz_slaney(m);
  }

  std::vector<float> w(static_cast<size_t>(n_mels) * n_bins);
  for (int i = 0; i < n_mels; ++i) {
    const double f0 = edge_hz[static_cast<size_t>(i)], f1 = edge_hz[static_cast<size_t>(i) + 1],
                 f2 = edge_hz[static_cast<size_t>(i) + 2];
    const double d0 = f1 - f0, d1 = f2 - f1;
    const double enorm = 2.0 / (f2 - f0);  // Slaney: each triangle has unit area
    for (int k = 0; k < n_bins; ++k) {
      const double f = fft_hz[static_cast<size_t>(k)];
      const double lower = -(f0 - f) / d0;
      const double upper = (f2 - f) / d1;
      // librosa stores the triangle in a float32 array, then scales it in float64 and rounds again.
      const float tri = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      w[static_cast<size_t>(i) * n_bins + k] = static_cast<float>(static_cast<double>(tri) * enorm);
    }
  }
  return w;
}

const std::vector<float>& mel_filters_128() {
  static const std::vector<float> bank = slaney_mel_filterbank(16000, 400, 128, 0.0, 8000.0);
  return bank;
}

}  // namespace stepaudio
