#include "ops/stft_ops.h"

#include <vector>

#include "backend/cpu/stft_cpu.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/t2w_ops_cuda.h"
#define CUDA_T2W(...) return cuda::__VA_ARGS__
#else
#define CUDA_T2W(...) fail("this build has no CUDA backend")
#endif

namespace stepaudio::ops {

namespace {

void need(bool ok, const char* op, const std::string& what) {
  if (!ok) fail("{}: {}", op, what);
}

void need_f32(const Tensor& t, const char* op, const char* arg) {
  need(t.defined(), op, fmt::format("{} is undefined", arg));
  need(t.dtype() == DType::F32, op, fmt::format("{} must be F32, got {}", arg, t.desc()));
}

void need_sizes(int64_t n_fft, int64_t hop, const char* op) {
  need(n_fft >= 2 && hop >= 1 && hop <= n_fft, op,
       fmt::format("bad n_fft {} / hop {} (need n_fft >= 2 and 1 <= hop <= n_fft)", n_fft, hop));
}

bool on_cuda(const char* op, std::initializer_list<const Tensor*> ts) {
  bool cuda = false, cpu = false;
  for (const Tensor* t : ts) (t->device().is_cuda() ? cuda : cpu) = true;
  if (cuda && cpu) fail("{}: inputs are on different devices (CPU and CUDA)", op);
  return cuda;
}

}  // namespace

Tensor stft_small(const Tensor& x, int64_t n_fft, int64_t hop) {
  const char* op = "stft_small";
  need_f32(x, op, "x");
  need(x.ndim() == 2, op, fmt::format("x must be [B, N], got {}", x.desc()));
  need_sizes(n_fft, hop, op);
  need(x.dim(1) > n_fft / 2, op,
       fmt::format("x {} is too short for reflect padding of {} samples", x.desc(), n_fft / 2));
  if (on_cuda(op, {&x})) CUDA_T2W(stft_small(x, n_fft, hop));
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
  if (on_cuda(op, {&mag, &phase})) CUDA_T2W(istft_small(mag, phase, n_fft, hop));
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
