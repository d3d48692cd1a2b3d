#include "backend/cpu/stft_cpu.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {

constexpr int64_t kFramesPerTask = 256;

// cos/sin of 2*pi*m/n for m in [0, n): the DFT twiddles, indexed by (k*t) mod n.
void twiddles(int64_t n, std::vector<double>& c, std::vector<double>& s) {
  c.resize(static_cast<size_t>(n));
  s.resize(static_cast<size_t>(n));
  for (int64_t m = 0; m < n; ++m) {
    const double a = 2.0 * std::numbers::pi * static_cast<double>(m) / static_cast<double>(n);
    c[m] = std::cos(a);
    s[m] = std::sin(a);
  }
}

}  // namespace

void hann_periodic(int64_t n, float* w) {
  for (int64_t i = 0; i < n; ++i)
    w[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) /
                                                   static_cast<double>(n)));
}

void stft(const float* x, int64_t n, int64_t n_fft, int64_t hop, const float* w, float* re,
          float* im) {
  const int64_t pad = n_fft / 2, bins = n_fft / 2 + 1, frames = n / hop + 1;
  std::vector<double> c, s;
  twiddles(n_fft, c, s);
  parallel_for(frames, kFramesPerTask, [&](int64_t f0, int64_t f1) {
    std::vector<double> frame(static_cast<size_t>(n_fft));
    for (int64_t f = f0; f < f1; ++f) {
      for (int64_t t = 0; t < n_fft; ++t) {
        int64_t src = f * hop + t - pad;  // reflect padding, the edge sample not repeated
        if (src < 0) src = -src;
        if (src >= n) src = 2 * (n - 1) - src;
        frame[t] = static_cast<double>(x[src]) * w[t];
      }
      for (int64_t k = 0; k < bins; ++k) {
        double sr = 0, si = 0;
        for (int64_t t = 0; t < n_fft; ++t) {
          const int64_t m = (k * t) % n_fft;
          sr += frame[t] * c[m];
          si -= frame[t] * s[m];
        }
        re[k * frames + f] = static_cast<float>(sr);
        im[k * frames + f] = static_cast<float>(si);
      }
    }
  });
}

void istft(const float* mag, const float* phase, int64_t frames, int64_t n_fft, int64_t hop,
           const float* w, float* y) {
  const int64_t bins = n_fft / 2 + 1, pad = n_fft / 2;
  const int64_t full = n_fft + hop * (frames - 1), out = full - 2 * pad;
  std::vector<double> c, s;
  twiddles(n_fft, c, s);
  // Inverse real DFT of every frame, windowed: frames x n_fft.
  std::vector<float> seg(static_cast<size_t>(frames * n_fft));
  parallel_for(frames, kFramesPerTask, [&](int64_t f0, int64_t f1) {
    std::vector<float> re(static_cast<size_t>(bins)), im(static_cast<size_t>(bins));
    for (int64_t f = f0; f < f1; ++f) {
      for (int64_t k = 0; k < bins; ++k) {
        // The spectrum in float32 as the reference builds it: mag*cos(phase), mag*sin(phase).
        const float m = mag[k * frames + f], p = phase[k * frames + f];
        re[k] = m * std::cos(p);
        im[k] = m * std::sin(p);
      }
      for (int64_t t = 0; t < n_fft; ++t) {
        double acc = re[0];
        for (int64_t k = 1; k < bins; ++k) {
          const int64_t mi = (k * t) % n_fft;
          // The Nyquist bin of an even n_fft appears once, its imaginary part unused.
          const double scale = (2 * k == n_fft) ? 1.0 : 2.0;
          acc += scale * (re[k] * c[mi] - (2 * k == n_fft ? 0.0 : im[k] * s[mi]));
        }
        seg[f * n_fft + t] = static_cast<float>(acc / static_cast<double>(n_fft)) * w[t];
      }
    }
  });
  // Overlap-add and normalise, keeping only the samples [pad, full - pad).
  parallel_for(out, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t pos = i + pad;
      const int64_t fa = std::max<int64_t>(0, (pos - n_fft) / hop),
                    fb = std::min(frames - 1, pos / hop);
      float acc = 0.f, env = 0.f;
      for (int64_t f = fa; f <= fb; ++f) {
        const int64_t t = pos - f * hop;
        if (t < 0 || t >= n_fft) continue;
        acc += seg[f * n_fft + t];
        env += w[t] * w[t];
      }
      y[i] = acc / (env > 1e-8f ? env : 1.f);
    }
  });
}

}  // namespace stepaudio::cpu
