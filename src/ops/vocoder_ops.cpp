#include "ops/vocoder_ops.h"

#include <cstring>

#include "backend/cpu/vocoder_cpu.h"
#include "ops/dispatch.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/t2w_ops_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {}  // namespace

Tensor nsf_sines(const Tensor& f0, int64_t dim, const NsfOptions& o, const Tensor& rand_ini,
                 const Tensor& noise) {
  const char* op = "nsf_sines";
  need_f32(f0, op, "f0");
  need(f0.ndim() == 1, op, fmt::format("f0 must be [F], got {}", f0.desc()));
  need(dim >= 1 && o.upsample >= 1 && o.sample_rate > 0, op,
       fmt::format("bad dim {} / upsample {} / sample rate {}", dim, o.upsample, o.sample_rate));
  const int64_t N = f0.dim(0) * o.upsample;
  if (rand_ini.defined()) {
    need_f32(rand_ini, op, "rand_ini");
    need(rand_ini.numel() == dim, op,
         fmt::format("rand_ini {} must hold {} values", rand_ini.desc(), dim));
  }
  if (noise.defined()) {
    need_f32(noise, op, "noise");
    need(noise.shape() == Shape{N, dim}, op,
         fmt::format("noise {} must be [F*upsample, dim] = [{}, {}]", noise.desc(), N, dim));
  }
  if (on_cuda(op, {&f0, &rand_ini, &noise}))
    CUDA_OP(nsf_sines(f0,
                      {dim, o.upsample, o.sample_rate, o.sine_amp, o.noise_std, o.voiced_threshold},
                      rand_ini, noise));
  Tensor y = Tensor::empty({N, dim}, DType::F32);
  cpu::NsfParams p{dim, o.upsample, o.sample_rate, o.sine_amp, o.noise_std, o.voiced_threshold};
  cpu::nsf_sines(f0.data<float>(), f0.dim(0), rand_ini.defined() ? rand_ini.data<float>() : nullptr,
                 noise.defined() ? noise.data<float>() : nullptr, p, y.data<float>());
  return y;
}

void abs_(Tensor& x) {
  need_f32(x, "abs", "x");
  if (on_cuda("abs", {&x})) CUDA_OP(t2w_act_(x, cuda::T2wAct::Abs));
  cpu::abs(x.data<float>(), x.numel());
}

void clamp_(Tensor& x, float lo, float hi) {
  need_f32(x, "clamp", "x");
  need(lo <= hi, "clamp", fmt::format("lower bound {} exceeds upper bound {}", lo, hi));
  if (on_cuda("clamp", {&x})) CUDA_OP(t2w_clamp_(x, lo, hi));
  cpu::clamp(x.data<float>(), x.numel(), lo, hi);
}

void copy_(Tensor& dst, const Tensor& src) {
  need_f32(dst, "copy", "dst");
  need_f32(src, "copy", "src");
  need(dst.numel() == src.numel(), "copy",
       fmt::format("dst {} and src {} differ in size", dst.desc(), src.desc()));
  if (on_cuda("copy", {&dst, &src})) CUDA_OP(copy_(dst, src));
  if (dst.numel()) std::memmove(dst.raw(), src.raw(), dst.nbytes());
}

Tensor concat_time(const Tensor& a, const Tensor& b) {
  const char* op = "concat_time";
  need_f32(a, op, "a");
  need_f32(b, op, "b");
  need(a.ndim() == 2 && b.ndim() == 2 && a.dim(0) == b.dim(0), op,
       fmt::format("a {} and b {} must be [C, T] with the same C", a.desc(), b.desc()));
  const int64_t C = a.dim(0), Ta = a.dim(1), Tb = b.dim(1);
  if (on_cuda(op, {&a, &b})) CUDA_OP(concat_axis({a, b}, 1, {C, Ta + Tb}));
  Tensor y = Tensor::empty({C, Ta + Tb}, DType::F32);
  for (int64_t c = 0; c < C; ++c) {
    float* row = y.data<float>() + c * (Ta + Tb);
    if (Ta) std::memcpy(row, a.data<float>() + c * Ta, Ta * sizeof(float));
    if (Tb) std::memcpy(row + Ta, b.data<float>() + c * Tb, Tb * sizeof(float));
  }
  return y;
}

Tensor slice_time(const Tensor& x, int64_t begin, int64_t end) {
  const char* op = "slice_time";
  need_f32(x, op, "x");
  need(x.ndim() == 2 && 0 <= begin && begin <= end && end <= x.dim(1), op,
       fmt::format("bad column range [{}, {}) of x {} (expected [C, T])", begin, end, x.desc()));
  if (on_cuda(op, {&x})) CUDA_OP(slice_axis(x, 1, begin, end));
  const int64_t C = x.dim(0), T = x.dim(1), n = end - begin;
  Tensor y = Tensor::empty({C, n}, DType::F32);
  for (int64_t c = 0; c < C && n > 0; ++c)
    std::memcpy(y.data<float>() + c * n, x.data<float>() + c * T + begin, n * sizeof(float));
  return y;
}

Tensor hamming_crossfade(const Tensor& head, const Tensor& tail) {
  const char* op = "hamming_crossfade";
  need_f32(head, op, "head");
  need_f32(tail, op, "tail");
  need(head.ndim() == 1 && head.shape() == tail.shape(), op,
       fmt::format("head {} and tail {} must both be [n]", head.desc(), tail.desc()));
  if (on_cuda(op, {&head, &tail})) CUDA_OP(hamming_crossfade(head, tail));
  Tensor y = Tensor::empty(head.shape(), DType::F32);
  cpu::hamming_crossfade(head.data<float>(), tail.data<float>(), head.dim(0), y.data<float>());
  return y;
}

}  // namespace stepaudio::ops
