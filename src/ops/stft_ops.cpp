#include "ops/stft_ops.h"

#include <vector>

#include "backend/cpu/stft_cpu.h"
#include "ops/dispatch.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/t2w_ops_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {

void need_sizes(int64_t n_fft, int64_t hop, const char* op) {
  need(n_fft >= 2 && hop >= 1 && hop <= n_fft, op,
       fmt::format("bad n_fft {} / hop {} (need n_fft >= 2 and 1 <= hop <= n_fft)", n_fft, hop));
}

}  // namespace

Tensor stft_small(const Tensor& x, int64_t n_fft, int64_t hop) {
  const char* op = "stft_small";
  need_f32(x, op, "x");
  need(x.ndim() == 2, op, fmt::format("x must be [B, N], got {}", x.desc()));
  need_sizes(n_fft, hop, op);
  need(x.dim(1) > n_fft / 2, op,
       fmt::format("x {} is too short for reflect padding of {} samples", x.desc(), n_fft / 2));
  if (on_cuda(op, {&x})) CUDA_OP(stft_small(x, n_fft, hop));
  const int64_t B = x.dim(0), N = x.dim(1), bins = n_fft / 2 + 1, frames = N / hop + 1;
  std::vector<float> w(static_cast<size_t>(n_fft));
  cpu::hann_periodic(n_fft, w.data());
  Tensor y = Tensor::empty({B, 2 * bins, frames}, DType::F32);
  for (int64_t b = 0; b < B; ++b) {
    float* yb = y.data<float>() + b * 2 * bins * frames;
    cpu::stft(x.data<float>() + b * N, N, n_fft, hop, w.data(), yb, yb + bins * frames);
  }
  return y;
}

Tensor istft_small(const Tensor& mag, const Tensor& phase, int64_t n_fft, int64_t hop) {
  const char* op = "istft_small";
  need_f32(mag, op, "mag");
  need_f32(phase, op, "phase");
  need_sizes(n_fft, hop, op);
  const int64_t bins = n_fft / 2 + 1;
  need(mag.ndim() == 3 && mag.shape() == phase.shape() && mag.dim(1) == bins && mag.dim(2) >= 1, op,
       fmt::format("mag {} and phase {} must both be [B, n_fft/2+1 = {}, frames >= 1]", mag.desc(),
                   phase.desc(), bins));
  if (on_cuda(op, {&mag, &phase})) CUDA_OP(istft_small(mag, phase, n_fft, hop));
  const int64_t B = mag.dim(0), frames = mag.dim(2), out = (frames - 1) * hop;
  std::vector<float> w(static_cast<size_t>(n_fft));
  cpu::hann_periodic(n_fft, w.data());
  Tensor y = Tensor::empty({B, out}, DType::F32);
  for (int64_t b = 0; b < B; ++b)
    cpu::istft(mag.data<float>() + b * bins * frames, phase.data<float>() + b * bins * frames,
               frames, n_fft, hop, w.data(), y.data<float>() + b * out);
  return y;
}

}  // namespace stepaudio::ops
