// torchaudio's default Resample (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99), ported
// so that the kernel is bit-identical to the one torchaudio caches and the output matches its
// conv1d to float rounding. See functional.py `_get_sinc_resample_kernel` and
// `_apply_sinc_resample_kernel` for the reference algorithm.
//
// torchaudio builds a dense [new, 2*width + orig] kernel and runs a strided conv1d over the input
// padded with `width` zeros on the left. Outside |t| < lowpass_filter_width every tap is the
// clamped edge value, which underflows to 0 in float32, so each phase only needs its ~2*width
// non-zero taps; that keeps the work and memory small even when the reduced rates are large
// (44101 -> 16000 would be a 2.8 GB dense kernel).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <numeric>

#include "audio/load.h"
#include "core/error.h"
#include "core/parallel.h"

namespace stepaudio {
namespace {

constexpr int kLowpassWidth = 6;
constexpr double kRolloff = 0.99;

struct Phase {
  int64_t first = 0;        // index of taps[0] in the dense kernel row
  std::vector<float> taps;  // the non-zero span of the row
};

struct Kernel {
  int64_t orig = 0, next = 0;  // gcd-reduced rates
  int64_t width = 0;
  std::vector<Phase> phases;
};

// The kernel value at t (before clamping) as torchaudio computes it: float64, cast to float32.
float kernel_value(double t, double base, int64_t orig) {
  t = std::clamp(t, -double{kLowpassWidth}, double{kLowpassWidth});
  double w = std::cos(t * std::numbers::pi / kLowpassWidth / 2);
  w = w * w;
  t *= std::numbers::pi;
  const double scale = base / static_cast<double>(orig);
  const double s = t == 0 ? 1.0 : std::sin(t) / t;
  return static_cast<float>(s * (w * scale));
}

// Tap k of phase j. `jf` is the phase offset -j/new, which torchaudio computes in float32 (its
// arange has no dtype) before adding the float64 tap positions (k - width)/orig.
float tap(float jf, int64_t k, const Kernel& K, double base) {
  const double t =
      (static_cast<double>(jf) + static_cast<double>(k - K.width) / static_cast<double>(K.orig)) *
      base;
  return kernel_value(t, base, K.orig);
}

// Builds phases [0, n_phases); later phases are never used when the output is shorter than one
// full period.
Kernel make_kernel(int from_rate, int to_rate, int64_t n_phases) {
  Kernel K;
  const int64_t g = std::gcd(from_rate, to_rate);
  K.orig = from_rate / g;
  K.next = to_rate / g;
  const double base = static_cast<double>(std::min(K.orig, K.next)) * kRolloff;
  K.width = static_cast<int64_t>(std::ceil(kLowpassWidth * K.orig / base));
  const int64_t row = 2 * K.width + K.orig;

  // Taps with |t| >= 6 are clamped to the edge value; skipping them is exact only if that value
  // is 0 in float32 (it is ~1e-49 for any rates, but check rather than assume).
  SA_CHECK(kernel_value(kLowpassWidth + 1, base, K.orig) == 0.0f &&
               kernel_value(-kLowpassWidth - 1, base, K.orig) == 0.0f,
           "resample kernel edge taps are not zero for {} -> {}", from_rate, to_rate);

  const double reach = kLowpassWidth / base;  // |jf + (k - width)/orig| < reach <=> |t| < 6
  K.phases.resize(static_cast<size_t>(n_phases));
  parallel_for(n_phases, 64, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      const float jf = static_cast<float>(-j) / static_cast<float>(K.next);
      // A margin of 2 taps on each side absorbs rounding in the bounds themselves.
      int64_t lo = static_cast<int64_t>(std::floor(K.width + K.orig * (-reach - jf))) - 2;
      int64_t hi = static_cast<int64_t>(std::ceil(K.width + K.orig * (reach - jf))) + 3;
      lo = std::clamp<int64_t>(lo, 0, row);
      hi = std::clamp<int64_t>(hi, lo, row);
      std::vector<float> taps(static_cast<size_t>(hi - lo));
      for (int64_t k = lo; k < hi; ++k) taps[static_cast<size_t>(k - lo)] = tap(jf, k, K, base);
      // Trim exact zeros so the inner loop only touches real taps.
      size_t a = 0, z = taps.size();
      while (a < z && taps[a] == 0.0f) ++a;
      while (z > a && taps[z - 1] == 0.0f) --z;
      Phase& p = K.phases[static_cast<size_t>(j)];
      p.first = lo + static_cast<int64_t>(a);
      p.taps.assign(taps.begin() + static_cast<std::ptrdiff_t>(a),
                    taps.begin() + static_cast<std::ptrdiff_t>(z));
    }
  });
  return K;
}

// Sum of x[start + m] * w[m] over m in [0, n), with x zero outside [0, len). Four accumulators
// break the add dependency chain; products of two floats are exact in double.
float dot(const float* x, int64_t len, int64_t start, const float* w, int64_t n) {
  int64_t m0 = 0, m1 = n;
  if (start < 0) m0 = std::min(n, -start);
  if (start + n > len) m1 = std::max(m0, len - start);
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) {
    const float* p = x + start + m;
    a0 += static_cast<double>(p[0]) * w[m];
    a1 += static_cast<double>(p[1]) * w[m + 1];
    a2 += static_cast<double>(p[2]) * w[m + 2];
    a3 += static_cast<double>(p[3]) * w[m + 3];
  }
  for (; m < m1; ++m) a0 += static_cast<double>(x[start + m]) * w[m];
  return static_cast<float>((a0 + a1) + (a2 + a3));
}

}  // namespace

std::vector<float> resample(std::span<const float> in, int from_rate, int to_rate) {
  if (from_rate < 1 || from_rate > kMaxSampleRate || to_rate < 1 || to_rate > kMaxSampleRate)
    fail("resample: rates must be in [1, {}] Hz, got {} -> {}", kMaxSampleRate, from_rate, to_rate);
  const int64_t len = static_cast<int64_t>(in.size());
  for (int64_t i = 0; i < len; ++i) {
    if (!std::isfinite(in[static_cast<size_t>(i)]))
      fail("resample: input sample {} of {} is {}, expected a finite value", i, len,
           in[static_cast<size_t>(i)]);
  }
  if (from_rate == to_rate) return {in.begin(), in.end()};

  const int64_t g = std::gcd(from_rate, to_rate);
  const int64_t orig = from_rate / g, next = to_rate / g;
  // ceil(next * len / orig) as torchaudio computes it; len < 2^40 keeps the product exact.
  if (len > (int64_t{1} << 40)) fail("resample: input of {} samples is too long", len);
  const int64_t out_len = (next * len + orig - 1) / orig;
  // The same bound as DecodeOptions::max_frames: a header claiming a tiny rate must not turn a
  // small file into an out-of-memory crash.
  if (out_len > (int64_t{1} << 30))
    fail("resample: {} samples at {} -> {} Hz would give {} samples, more than the 2^30 supported",
         len, from_rate, to_rate, out_len);
  std::vector<float> out(static_cast<size_t>(out_len));
  if (out_len == 0) return out;

  const Kernel K = make_kernel(from_rate, to_rate, std::min(next, out_len));
  const int64_t frames = (out_len + next - 1) / next;  // conv1d output positions used
  int64_t taps_per_frame = 0;
  for (const Phase& p : K.phases) taps_per_frame += static_cast<int64_t>(p.taps.size());
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, taps_per_frame));
  const float* x = in.data();
  float* y = out.data();
  parallel_for(frames, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t base_in = i * orig - K.width;  // padded position i*orig is x[i*orig - width]
      const int64_t n_here = std::min(next, out_len - i * next);
      for (int64_t j = 0; j < n_here; ++j) {
        const Phase& p = K.phases[static_cast<size_t>(j)];
        y[i * next + j] =
            dot(x, len, base_in + p.first, p.taps.data(), static_cast<int64_t>(p.taps.size()));
      }
    }
  });
  return out;
}

}  // namespace stepaudio
