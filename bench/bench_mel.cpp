// Log-mel front end benchmarks.
//   CPU: the whole front end for a 15 s clip, and its FFT stage against a naive O(n^2) DFT of
//        the same 1502 windowed frames (both single-threaded, so the ratio is the algorithm's).
//   GPU: one 15 s clip including the host-to-device copy (result left on the device, stream
//        synchronised), the same into preallocated outputs, and a batch of 64 clips of 15 s.
// Inputs rotate over several clips so that repeated runs do not time a warm cache.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <vector>

#include "audio/mel.h"
#include "backend/cpu/mel_cpu.h"
#include "core/parallel.h"
#if STEPAUDIO_CUDA
#include <cuda_runtime.h>
#endif

using namespace stepaudio;

namespace {

constexpr size_t k15s = 15 * 16000;
constexpr int kRotate = 8;

const std::vector<std::vector<float>>& clips15s() {
  static const auto c = [] {
    std::vector<std::vector<float>> v;
    std::mt19937 g(42);
    std::normal_distribution<float> d(0.0f, 0.1f);
    for (int i = 0; i < 64 + kRotate; ++i) {
      std::vector<float> x(k15s);
      for (auto& s : x) s = d(g);
      v.push_back(std::move(x));
    }
    return v;
  }();
  return c;
}

const std::vector<float>& frames15s() {
  static const auto f = [] {
    const int64_t T = mel_frames(k15s);
    std::vector<float> v(static_cast<size_t>(T) * mel::kNFft);
    cpu::windowed_frames(clips15s()[0], 0, T, v.data());
    return v;
  }();
  return f;
}

void BM_CpuLogMel_15s(benchmark::State& st) {
  std::vector<float> out(static_cast<size_t>(mel::kMels * mel_frames(k15s)));
  int i = 0;
  for (auto _ : st) {
    cpu::log_mel(clips15s()[static_cast<size_t>(i++ % kRotate)], out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["threads"] = num_threads();
}

// FFT stage, one thread: kissfft real FFT + |X|^2 for every frame.
void BM_CpuFftFrames_15s_1thread(benchmark::State& st) {
  const auto& f = frames15s();
  const int64_t T = static_cast<int64_t>(f.size() / mel::kNFft);
  std::vector<float> power(static_cast<size_t>(T) * mel::kBins);
  const int before = num_threads();
  set_num_threads(1);
  for (auto _ : st) {
    cpu::power_spectra(f.data(), T, power.data());
    benchmark::DoNotOptimize(power.data());
  }
  set_num_threads(before);
  st.counters["frames"] = static_cast<double>(T);
}

// The same power spectra by the textbook DFT: X_k = sum_n x_n e^{-2 pi i k n / N}, with a
// precomputed twiddle table (the cheapest honest O(N^2) form).
void BM_CpuNaiveDftFrames_15s_1thread(benchmark::State& st) {
  const auto& f = frames15s();
  const int64_t T = static_cast<int64_t>(f.size() / mel::kNFft);
  constexpr int N = mel::kNFft;
  std::vector<float> cosv(N), sinv(N);
  for (int i = 0; i < N; ++i) {
    cosv[static_cast<size_t>(i)] = static_cast<float>(std::cos(2 * std::numbers::pi * i / N));
    sinv[static_cast<size_t>(i)] = static_cast<float>(std::sin(2 * std::numbers::pi * i / N));
  }
  std::vector<float> power(static_cast<size_t>(T) * mel::kBins);
  for (auto _ : st) {
    for (int64_t t = 0; t < T; ++t) {
      const float* x = f.data() + t * N;
      for (int k = 0; k < mel::kBins; ++k) {
        float re = 0, im = 0;
        int idx = 0;  // (k * n) mod N
        for (int n = 0; n < N; ++n) {
          re += x[n] * cosv[static_cast<size_t>(idx)];
          im -= x[n] * sinv[static_cast<size_t>(idx)];
          idx += k;
          if (idx >= N) idx -= N;
        }
        power[static_cast<size_t>(t * mel::kBins + k)] = re * re + im * im;
      }
    }
    benchmark::DoNotOptimize(power.data());
  }
  st.counters["frames"] = static_cast<double>(T);
}

BENCHMARK(BM_CpuLogMel_15s)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CpuFftFrames_15s_1thread)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CpuNaiveDftFrames_15s_1thread)->Unit(benchmark::kMillisecond)->MinTime(2.0);

#if STEPAUDIO_CUDA
// Wall time per call, host gather + H2D + kernels + stream sync, as a caller sees it.
template <typename Fn>
void time_gpu(benchmark::State& st, MelExtractor& m, Fn&& fn) {
  for (int w = 0; w < 20; ++w) fn(w);  // plans, pool, cuBLAS kernels loaded
  cudaDeviceSynchronize();
  int i = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    fn(i++);
    cudaDeviceSynchronize();
    st.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  (void)m;
}

void BM_CudaLogMel_15s_WithH2D(benchmark::State& st) {
  MelExtractor m(Device::cuda(0));
  if (!m.device().is_cuda()) return st.SkipWithError("no CUDA device");
  time_gpu(st, m, [&](int i) {
    Tensor t = m.compute(clips15s()[static_cast<size_t>(i % kRotate)]);
    benchmark::DoNotOptimize(t.raw());
  });
  st.SetBytesProcessed(st.iterations() *
                       static_cast<int64_t>(k15s * 4 + mel::kMels * mel_frames(k15s) * 4));
}

void BM_CudaLogMel_15s_WithH2D_Into(benchmark::State& st) {
  MelExtractor m(Device::cuda(0));
  if (!m.device().is_cuda()) return st.SkipWithError("no CUDA device");
  std::vector<Tensor> out = {
      Tensor::empty({mel::kMels, mel_frames(k15s)}, DType::F32, Device::cuda(0))};
  time_gpu(st, m, [&](int i) {
    std::span<const float> one[] = {clips15s()[static_cast<size_t>(i % kRotate)]};
    m.compute_into(one, out);
  });
}

void BM_CudaLogMel_Batch64x15s_WithH2D(benchmark::State& st) {
  MelExtractor m(Device::cuda(0));
  if (!m.device().is_cuda()) return st.SkipWithError("no CUDA device");
  time_gpu(st, m, [&](int i) {
    std::vector<std::span<const float>> clips;
    for (int b = 0; b < 64; ++b) clips.push_back(clips15s()[static_cast<size_t>((b + i) % 72)]);
    auto r = m.compute_batch(clips);
    benchmark::DoNotOptimize(r.data());
  });
  st.SetItemsProcessed(st.iterations() * 64);
}

// The pieces of the single-clip path on their own, to place its time: the host gather into
// pinned memory (threaded, as the extractor does it) and the pinned host-to-device copy.
void BM_Part_HostGather_15s(benchmark::State& st) {
  float* pinned = nullptr;
  if (cudaMallocHost(&pinned, k15s * sizeof(float)) != cudaSuccess)
    return st.SkipWithError("cudaMallocHost failed");
  int i = 0;
  for (auto _ : st) {
    std::span<const float> one[] = {clips15s()[static_cast<size_t>(i++ % kRotate)]};
    cpu::gather_clips(one, 0, k15s, pinned);
    benchmark::DoNotOptimize(pinned);
  }
  cudaFreeHost(pinned);
}

void BM_Part_H2DPinned_15s(benchmark::State& st) {
  float *pinned = nullptr, *dev = nullptr;
  if (cudaMallocHost(&pinned, k15s * sizeof(float)) != cudaSuccess ||
      cudaMalloc(&dev, k15s * sizeof(float)) != cudaSuccess)
    return st.SkipWithError("allocation failed");
  std::memcpy(pinned, clips15s()[0].data(), k15s * sizeof(float));
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    cudaMemcpyAsync(dev, pinned, k15s * sizeof(float), cudaMemcpyHostToDevice, nullptr);
    cudaStreamSynchronize(nullptr);
    st.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(k15s * sizeof(float)));
  cudaFree(dev);
  cudaFreeHost(pinned);
}

BENCHMARK(BM_Part_HostGather_15s)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Part_H2DPinned_15s)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CudaLogMel_15s_WithH2D)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_CudaLogMel_15s_WithH2D_Into)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);
BENCHMARK(BM_CudaLogMel_Batch64x15s_WithH2D)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);
#endif

}  // namespace

BENCHMARK_MAIN();
