#include "backend/cpu/mel_cpu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numbers>

#include <cblas.h>
#include <kiss_fftr.h>

#include "audio/mel.h"
#include "audio/mel_filters.h"
#include "core/error.h"
#include "core/parallel.h"

namespace stepaudio::cpu {

namespace {
using mel::kBins;
using mel::kCenterPad;
using mel::kHop;
using mel::kMels;
using mel::kNFft;
using mel::kTailPad;

struct KissDeleter {
  void operator()(kiss_fftr_cfg c) const { kiss_fftr_free(c); }
};
using KissPlan = std::unique_ptr<std::remove_pointer_t<kiss_fftr_cfg>, KissDeleter>;

KissPlan make_plan() {
  KissPlan p(kiss_fftr_alloc(kNFft, 0, nullptr, nullptr));
  if (!p) fail("kissfft: cannot allocate a {}-point real FFT plan", kNFft);
  return p;
}

// Frames per parallel task: enough to amortise a plan allocation, and several tasks per thread.
int64_t frame_grain(int64_t frames) {
  const int64_t per = frames / (4 * static_cast<int64_t>(num_threads()));
  return std::max<int64_t>(32, per);
}
}  // namespace

const float* hann_window_400() {
  static const auto w = [] {
    std::array<float, kNFft> v{};
    // torch: arange(N).mul_(2*pi/N).cos_().mul_(-0.5).add_(0.5), all in float32.
    const float step = static_cast<float>(2.0 * std::numbers::pi / kNFft);
    for (int n = 0; n < kNFft; ++n)
      v[static_cast<size_t>(n)] = std::cos(static_cast<float>(n) * step) * -0.5f + 0.5f;
    return v;
  }();
  return w.data();
}

void windowed_frames(std::span<const float> samples, int64_t t0, int64_t t1, float* out) {
  const int64_t n_samples = static_cast<int64_t>(samples.size());
  const int64_t len = n_samples + kTailPad;  // > kCenterPad, so one reflection suffices
  const float* x = samples.data();
  const float* w = hann_window_400();
  for (int64_t t = t0; t < t1; ++t) {
    float* f = out + (t - t0) * kNFft;
    const int64_t j0 = t * kHop - kCenterPad;  // first sample index in the unpadded signal
    if (j0 >= 0 && j0 + kNFft <= n_samples) {  // interior frame: a plain windowed copy
      for (int n = 0; n < kNFft; ++n) f[n] = x[j0 + n] * w[n];
      continue;
    }
    for (int n = 0; n < kNFft; ++n) {
      int64_t j = j0 + n;
      if (j < 0) j = -j;
      if (j >= len) j = 2 * (len - 1) - j;
      f[n] = j < n_samples ? x[j] * w[n] : 0.0f;
    }
  }
}

void power_spectra(const float* frames, int64_t count, float* out) {
  parallel_for(count, frame_grain(count), [&](int64_t b, int64_t e) {
    KissPlan plan = make_plan();
    kiss_fft_cpx spec[kBins];
    for (int64_t i = b; i < e; ++i) {
      kiss_fftr(plan.get(), frames + i * kNFft, spec);
      float* p = out + i * kBins;
      for (int k = 0; k < kBins; ++k) p[k] = spec[k].r * spec[k].r + spec[k].i * spec[k].i;
    }
  });
}

void normalize_log_mel(float* x, int64_t n) {
  constexpr float kFloor = 1e-10f;
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp parallel for reduction(max : mx) schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    // Values at the floor are exactly log10(1e-10) = -10; spelling it out keeps digital silence at
    // exactly -1.5 whatever the libm's last-bit rounding of log10f(1e-10f) is.
    const float v = x[i] <= kFloor ? -10.0f : std::log10(x[i]);
    x[i] = v;
    mx = std::max(mx, v);
  }
  const float lo = mx - 8.0f;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] = (std::max(x[i], lo) + 4.0f) / 4.0f;
}

void gather_clips(std::span<const std::span<const float>> clips, size_t begin, size_t end,
                  float* dst) {
  constexpr int64_t kGrain = int64_t{1} << 15;  // floats per task: 128 KiB of copying
  parallel_for(static_cast<int64_t>(end - begin), kGrain, [&](int64_t b, int64_t e) {
    size_t at = begin + static_cast<size_t>(b);  // position in the virtual concatenation
    const size_t stop = begin + static_cast<size_t>(e);
    size_t base = 0, ci = 0;
    while (ci < clips.size() && base + clips[ci].size() <= at) base += clips[ci++].size();
    while (at < stop && ci < clips.size()) {
      const size_t take = std::min(stop, base + clips[ci].size()) - at;
      std::memcpy(dst + (at - begin), clips[ci].data() + (at - base), take * sizeof(float));
      at += take;
      base += clips[ci++].size();
    }
  });
}

void log_mel(std::span<const float> samples, float* out) {
  const int64_t frames = mel_frames(static_cast<int64_t>(samples.size()));
  std::unique_ptr<float[]> power(new float[static_cast<size_t>(frames) * kBins]);
  parallel_for(frames, frame_grain(frames), [&](int64_t b, int64_t e) {
    KissPlan plan = make_plan();
    float frame[kNFft];
    kiss_fft_cpx spec[kBins];
    for (int64_t t = b; t < e; ++t) {
      windowed_frames(samples, t, t + 1, frame);
      kiss_fftr(plan.get(), frame, spec);
      float* p = power.get() + t * kBins;
      for (int k = 0; k < kBins; ++k) p[k] = spec[k].r * spec[k].r + spec[k].i * spec[k].i;
    }
  });
  // mel[128, T] = filters[128, 201] . power[T, 201]^T, one GEMM over all frames.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kMels, static_cast<int>(frames), kBins, 1.0f,
              mel_filters_128().data(), kBins, power.get(), kBins, 0.0f, out,
              static_cast<int>(frames));
  normalize_log_mel(out, kMels * frames);
}

}  // namespace stepaudio::cpu
