// The NSF harmonic source (SineGen2) on the GPU. The phase of a harmonic reaches ~1e5 rad over a
// few seconds, where one float32 ulp is ~0.01 rad, so every step follows the CPU reference's
// float32 order exactly: products and sums are rounded one at a time (__fmul_rn / __fadd_rn keep
// nvcc from fusing them into FMAs), and the cumulative sum over frames runs sequentially in
// float64, one thread per harmonic.
#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/t2w_kernels.h"

namespace stepaudio::cuda {

namespace {

constexpr int kThreads = 256;
constexpr float kPi = 3.14159265358979323846f;

struct Tap {
  int64_t i0, i1;
  float l0, l1;
};

// F.interpolate(linear, align_corners=False) source position of output j (see vocoder_cpu).
__device__ Tap linear_tap(int64_t j, float step, int64_t in_size) {
  float src = __fsub_rn(__fmul_rn(step, __fadd_rn(static_cast<float>(j), 0.5f)), 0.5f);
  if (src < 0.f) src = 0.f;
  int64_t i0 = static_cast<int64_t>(floorf(src));
  if (i0 > in_size - 1) i0 = in_size - 1;
  const float l1 = fminf(fmaxf(__fsub_rn(src, static_cast<float>(i0)), 0.f), 1.f);
  return {i0, i0 + (i0 < in_size - 1 ? 1 : 0), __fsub_rn(1.f, l1), l1};
}

__device__ float rad(const float* f0, const float* rand_ini, const T2wNsfParams& p, int64_t j,
                     int64_t h) {
  const float fn = __fmul_rn(f0[j / p.upsample], static_cast<float>(h + 1));
  const float v = __fdiv_rn(fn, p.sample_rate);
  float r = fmodf(v, 1.f);
  if (r < 0.f) r = __fadd_rn(r, 1.f);
  if (j == 0 && h > 0 && rand_ini) r = __fadd_rn(r, rand_ini[h]);
  return r;
}

__global__ void phase_kernel(const float* f0, int64_t F, const float* rand_ini, T2wNsfParams p,
                             float down_step, float* phase) {
  const int64_t h = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (h >= p.dim) return;
  const int64_t N = F * p.upsample;
  double cum = 0.0;
  for (int64_t k = 0; k < F; ++k) {
    const Tap t = linear_tap(k, down_step, N);
    const float r = __fadd_rn(__fmul_rn(rad(f0, rand_ini, p, t.i0, h), t.l0),
                              __fmul_rn(rad(f0, rand_ini, p, t.i1, h), t.l1));
    cum += static_cast<double>(r);
    const float ph = __fmul_rn(__fmul_rn(static_cast<float>(cum), 2.f), kPi);
    phase[k * p.dim + h] = __fmul_rn(ph, static_cast<float>(p.upsample));
  }
}

__global__ void sines_kernel(const float* f0, int64_t F, const float* noise, T2wNsfParams p,
                             float up_step, float unvoiced_amp, const float* phase, float* out,
                             int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i / p.dim, h = i % p.dim;
    const Tap t = linear_tap(j, up_step, F);
    const float uv = f0[j / p.upsample] > p.voiced_threshold ? 1.f : 0.f;
    const float amp = __fadd_rn(__fmul_rn(uv, p.noise_std), __fmul_rn(1.f - uv, unvoiced_amp));
    const float ph = __fadd_rn(__fmul_rn(phase[t.i0 * p.dim + h], t.l0),
                               __fmul_rn(phase[t.i1 * p.dim + h], t.l1));
    const float sine = __fmul_rn(sinf(ph), p.sine_amp);
    const float nz = __fmul_rn(amp, noise ? noise[i] : 0.f);
    out[i] = __fadd_rn(__fmul_rn(sine, uv), nz);
  }
}

}  // namespace

void launch_t2w_nsf_sines(const float* f0, int64_t F, const float* rand_ini, const float* noise,
                          const T2wNsfParams& p, float* phase, float* out) {
  if (F <= 0 || p.dim <= 0) return;
  const double up = static_cast<double>(p.upsample);
  const float down_step = static_cast<float>(1.0 / (1.0 / up));
  const float up_step = static_cast<float>(1.0 / up);
  const float unvoiced_amp = static_cast<float>(static_cast<double>(p.sine_amp) / 3.0);
  phase_kernel<<<static_cast<unsigned>((p.dim + 31) / 32), 32>>>(f0, F, rand_ini, p, down_step,
                                                                 phase);
  check_launch("nsf_sines phase");
  const int64_t n = F * p.upsample * p.dim;
  sines_kernel<<<grid_for(n, kThreads), kThreads>>>(f0, F, noise, p, up_step, unvoiced_amp, phase,
                                                    out, n);
  check_launch("nsf_sines");
}

}  // namespace stepaudio::cuda
