// token2wav on the GPU with full-size random weights in the official layout (the tensor names and
// shapes of flow.pt / hift.pt from io/t2w_writer, folded as T2wWeights folds them; fp32 as the
// official weights are stored). Prints "RESULT name value unit" lines for scripts/gpu-check:
//   offline, 10 s of speech (250 codes after a 100-code prompt, 10 Euler steps): flow and HiFT
//   wall time (median of --runs, synchronised) and their real-time factors;
//   streaming: time from the first chunk's codes (25 + 3 look-ahead) to its first 24 kHz samples
//   (flow chunk + vocoder stream push, the voice's prompt already cached), the later chunks'
//   mean time, and the prompt's setup_cache time.
// Both GPU precisions in one run (T2wPrecision): the fast mode's rows under the plain names, the
// exact fp32 mode's with the suffix _fp32 (--precision fp32|fast|both picks).
//   bench_token2wav_gpu [--runs N] [--codes N] [--prompt N] [--precision both]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/device.h"
#include "io/t2w_writer.h"
#include "model/flow.h"
#include "model/hift.h"
#include "model/t2w_weights.h"
#include "report.h"

#if STEPAUDIO_CUDA
#include <cuda_runtime.h>
#endif

using namespace stepaudio;
using bench::median;
using bench::result;

namespace {

[[maybe_unused]] WeightFn fn_of(const std::map<std::string, Tensor>& m) {
  return [&m](const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? Tensor() : it->second;
  };
}

}  // namespace

int main(int argc, char** argv) {
  [[maybe_unused]] int runs = 5;
  [[maybe_unused]] int64_t n_codes = 250, n_prompt = 100;
  [[maybe_unused]] std::string precision = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--codes")) n_codes = std::max(29, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--prompt")) n_prompt = std::max(4, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--precision")) precision = argv[i + 1];
  }
#if !STEPAUDIO_CUDA
  std::fprintf(stderr, "bench_token2wav_gpu: this build has no CUDA backend\n");
  return 1;
#else
  if (!cuda_available()) {
    std::fprintf(stderr, "bench_token2wav_gpu: no CUDA device\n");
    return 1;
  }
  try {
    std::vector<T2wPrecision> modes;
    if (precision == "both")
      modes = {T2wPrecision::Fp32, T2wPrecision::Fast};
    else
      modes = {parse_t2w_precision(precision, "--precision")};
    const Device gpu = Device::cuda(0);
    const T2wPreset preset = t2w_preset("full");
    const FlowConfig& cfg = preset.flow;
    auto t_load = std::chrono::steady_clock::now();
    const auto flow_w = random_t2w_weights(flow_weight_layout(cfg), 1, "random flow");
    const auto hift_w = random_t2w_weights(
        hift_weight_layout(preset.hift_base_channels, preset.hift_cond_channels), 2, "random hift");
    Flow flow(cfg, fn_of(flow_w));
    HiftGenerator hift(fn_of(hift_w), 3);
    flow.to(gpu);
    hift.to(gpu);
    std::printf("full-size random token2wav on the GPU in %.1f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count());

    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> code(0, static_cast<int32_t>(cfg.vocab_size) - 1);
    std::vector<int32_t> prompt(static_cast<size_t>(n_prompt)), codes(static_cast<size_t>(n_codes));
    for (int32_t& c : prompt) c = code(rng);
    for (int32_t& c : codes) c = code(rng);
    const int64_t S = cfg.encoder.up_stride, O = cfg.output_size;
    std::normal_distribution<float> nd(0.f, 1.f);
    auto randn = [&](Shape s) {
      Tensor t = Tensor::empty(std::move(s), DType::F32);
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
      return t;
    };
    const Tensor prompt_mel = randn({S * n_prompt, O}), spk = randn({cfg.spk_embed_dim});
    const double seconds = static_cast<double>(n_codes * S * hift.config().samples_per_frame()) /
                           static_cast<double>(hift.config().sample_rate);
    using clock = std::chrono::steady_clock;
    auto since = [](clock::time_point t) {
      return std::chrono::duration<double, std::milli>(clock::now() - t).count();
    };

    for (const T2wPrecision mode : modes) {
      flow.set_precision(mode);
      hift.set_precision(mode);
      // The default GPU mode (fast) keeps the plain names; the exact mode's rows end in _fp32.
      const std::string sfx = mode == T2wPrecision::Fast ? "" : "_fp32";
      auto res = [&](const std::string& name, double v, const char* unit) {
        result(name + sfx, v, unit);
      };
      std::printf("mode %s\n", t2w_precision_name(mode));
      // Offline.
      std::vector<double> flow_ms, hift_ms;
      for (int r = 0; r <= runs; ++r) {  // run 0 warms up (allocator, cuBLAS heuristics)
        cudaDeviceSynchronize();
        auto t0 = clock::now();
        const Tensor mel = flow.inference(prompt, codes, prompt_mel, spk, 10);
        cudaDeviceSynchronize();
        const double f = since(t0);
        t0 = clock::now();
        const HiftOutput out = hift.forward(mel);
        cudaDeviceSynchronize();
        const double h = since(t0);
        if (r == 0) {
          std::printf("offline: mel %s, wav %s (%.2f s of audio), Euler steps %s\n",
                      mel.desc().c_str(), out.wav.desc().c_str(), seconds,
                      flow.last_solve_graphed() ? "replayed as a CUDA graph" : "op by op");
          continue;
        }
        flow_ms.push_back(f);
        hift_ms.push_back(h);
      }
      const double fm = median(flow_ms), hm = median(hift_ms);
      res("t2w_offline_flow_ms", fm, "ms");
      res("t2w_offline_hift_ms", hm, "ms");
      res("t2w_offline_rtf_flow", fm / 1000.0 / seconds, "x");
      res("t2w_offline_rtf_hift", hm / 1000.0 / seconds, "x");
      res("t2w_offline_rtf", (fm + hm) / 1000.0 / seconds, "x");

      // Streaming: the voice's prompt is cached once (setup_cache), then chunks of 25 + 3 codes.
      const int64_t L = cfg.encoder.pre_lookahead_len, chunk = 25;
      std::vector<double> first_ms, setup_ms, later_ms;
      for (int r = 0; r <= runs; ++r) {
        std::vector<int32_t> setup = prompt;
        setup.insert(setup.end(), codes.begin(), codes.begin() + L);
        cudaDeviceSynchronize();
        auto t0 = clock::now();
        FlowStreamState st = flow.setup_cache(setup, prompt_mel, spk, 10);
        cudaDeviceSynchronize();
        const double su = since(t0);
        HiftStream voc(hift);
        t0 = clock::now();
        std::vector<int32_t> part(codes.begin(), codes.begin() + chunk + L);
        Tensor samples = voc.push(flow.inference_chunk(part, false, st), false);
        cudaDeviceSynchronize();
        const double first = since(t0);
        if (samples.numel() == 0) std::printf("warning: the first chunk gave no samples\n");
        // The rest of the utterance, chunk by chunk (the estimator caches trimmed as Token2wav
        // does: the prompt's frames and the last 100).
        double rest = 0;
        int n_rest = 0;
        for (size_t at = static_cast<size_t>(chunk); at < codes.size();
             at += static_cast<size_t>(chunk)) {
          const bool last = at + static_cast<size_t>(chunk + L) >= codes.size();
          const size_t end = last ? codes.size() : at + static_cast<size_t>(chunk + L);
          std::vector<int32_t> p(codes.begin() + static_cast<long>(at),
                                 codes.begin() + static_cast<long>(end));
          trim_estimator_cache(st, S * n_prompt, 100);
          t0 = clock::now();
          voc.push(flow.inference_chunk(p, last, st), last);
          cudaDeviceSynchronize();
          rest += since(t0);
          ++n_rest;
          if (last) break;
        }
        if (r == 0) continue;
        setup_ms.push_back(su);
        first_ms.push_back(first);
        if (n_rest) later_ms.push_back(rest / n_rest);
      }
      res("t2w_stream_first_audio_ms", median(first_ms), "ms");
      res("t2w_stream_chunk_ms", later_ms.empty() ? 0.0 : median(later_ms), "ms");
      res("t2w_stream_prompt_setup_ms", median(setup_ms), "ms");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_token2wav_gpu: %s\n", e.what());
    return 1;
  }
#endif
}
