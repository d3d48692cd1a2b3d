// STFT / iSTFT of the HiFT vocoder's tiny frames (n_fft 16, hop 4): direct DFT sums, one thread
// per output value. As in the CPU reference the sums run in float64 over a float32 periodic Hann
// window, and the iSTFT builds its spectrum in float32 (mag*cos(phase), mag*sin(phase)).
#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/t2w_kernels.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float hann(int64_t i, int64_t n) {
  return static_cast<float>(0.5 -
                            0.5 * cospi(2.0 * static_cast<double>(i) / static_cast<double>(n)));
}

// y [B, 2*bins, frames]: bins rows of real parts, then bins rows of imaginary parts.
__global__ void stft_kernel(const float* x, int64_t N, int64_t n_fft, int64_t hop, int64_t bins,
                            int64_t frames, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t f = i % frames, bk = i / frames, k = bk % bins, b = bk / bins;
    const float* xb = x + b * N;
    const int64_t pad = n_fft / 2;
    double sr = 0, si = 0;
    for (int64_t t = 0; t < n_fft; ++t) {
      int64_t src = f * hop + t - pad;  // reflect padding, the edge sample not repeated
      if (src < 0) src = -src;
      if (src >= N) src = 2 * (N - 1) - src;
      const double v = static_cast<double>(xb[src]) * hann(t, n_fft);
      const double a = 2.0 * static_cast<double>((k * t) % n_fft) / static_cast<double>(n_fft);
      sr += v * cospi(a);
      si -= v * sinpi(a);
    }
    float* yb = y + b * 2 * bins * frames;
    yb[k * frames + f] = static_cast<float>(sr);
    yb[(bins + k) * frames + f] = static_cast<float>(si);
  }
}

// seg [B, frames, n_fft]: the windowed inverse real DFT of every frame.
__global__ void istft_frames_kernel(const float* mag, const float* phase, int64_t frames,
                                    int64_t n_fft, int64_t bins, float* seg, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i % n_fft, bf = i / n_fft, f = bf % frames, b = bf / frames;
    const float* mb = mag + b * bins * frames;
    const float* pb = phase + b * bins * frames;
    double acc = 0;
    for (int64_t k = 0; k < bins; ++k) {
      const float m = mb[k * frames + f], p = pb[k * frames + f];
      const float re = m * cosf(p);
      if (k == 0) {
        acc = re;
        continue;
      }
      const float im = m * sinf(p);
      const double a = 2.0 * static_cast<double>((k * t) % n_fft) / static_cast<double>(n_fft);
      const bool nyquist = 2 * k == n_fft;
      const double scale = nyquist ? 1.0 : 2.0;
      acc += scale * (re * cospi(a) - (nyquist ? 0.0 : im * sinpi(a)));
    }
    seg[i] = static_cast<float>(acc / static_cast<double>(n_fft)) * hann(t, n_fft);
  }
}

__global__ void overlap_add_kernel(const float* seg, int64_t frames, int64_t n_fft, int64_t hop,
                                   int64_t out, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i % out, b = i / out, pos = j + n_fft / 2;
    const float* sb = seg + b * frames * n_fft;
    int64_t fa = (pos - n_fft) / hop;
    if (fa < 0) fa = 0;
    int64_t fb = pos / hop;
    if (fb > frames - 1) fb = frames - 1;
    float acc = 0.f, env = 0.f;
    for (int64_t f = fa; f <= fb; ++f) {
      const int64_t t = pos - f * hop;
      if (t < 0 || t >= n_fft) continue;
      acc += sb[f * n_fft + t];
      const float w = hann(t, n_fft);
      env = __fadd_rn(env, __fmul_rn(w, w));  // unfused, as the CPU sums it
    }
    y[i] = acc / (env > 1e-8f ? env : 1.f);
  }
}

}  // namespace

void launch_t2w_stft(const float* x, int64_t B, int64_t N, int64_t n_fft, int64_t hop, float* y) {
  const int64_t bins = n_fft / 2 + 1, frames = N / hop + 1, n = B * bins * frames;
  if (n <= 0) return;
  stft_kernel<<<grid_for(n, kThreads), kThreads>>>(x, N, n_fft, hop, bins, frames, y, n);
  check_launch("stft_small");
}

void launch_t2w_istft(const float* mag, const float* phase, int64_t B, int64_t frames,
                      int64_t n_fft, int64_t hop, float* seg, float* y) {
  const int64_t bins = n_fft / 2 + 1, ns = B * frames * n_fft;
  if (ns <= 0) return;
  istft_frames_kernel<<<grid_for(ns, kThreads), kThreads>>>(mag, phase, frames, n_fft, bins, seg,
                                                            ns);
  check_launch("istft_small frames");
  const int64_t out = (frames - 1) * hop, n = B * out;
  if (n <= 0) return;
  overlap_add_kernel<<<grid_for(n, kThreads), kThreads>>>(seg, frames, n_fft, hop, out, y, n);
  check_launch("istft_small overlap-add");
}

}  // namespace stepaudio::cuda
