// End-to-end GPU figures on a full-size (random-weight) checkpoint, through the public API where
// possible:
//   encoder + adaptor for one 25 s chunk (mel [128, 2502], bf16 weights), median of N runs;
//   time to first token for a spoken question (default ../shared/audio/en_story_11s.wav) with a
//   short system prompt: audio decode + mel + encoder + prefill + the first sampled id.
//   attention alone at the encoder's and the LLM prefill's shapes, fp32 kernel against the bf16
//   tensor-core flash kernel (CUDA-event median), with the achieved TFLOP/s.
// Prints "RESULT name value unit" lines for scripts/gpu-check.
//   bench_pipeline_gpu --model DIR [--audio WAV] [--runs N] [--micro 0|1]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "model/encoder.h"
#include "ops/ops.h"
#include "report.h"
#include "stepaudio/engine.h"

#if STEPAUDIO_CUDA
#include <cuda_runtime.h>
#endif

using namespace stepaudio;
using bench::median;
using bench::result;

namespace {
#if STEPAUDIO_CUDA
// Median GPU time of one ops::attention call (events around the call; outputs are freed to the
// caching allocator between calls, so no allocation is timed after the first).
double time_attention(int64_t B, int64_t L, int64_t H, int64_t Hkv, int64_t D, bool causal,
                      DType compute, int runs) {
  const Device gpu = Device::cuda(0);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto rnd = [&](Shape s) {
    Tensor t = Tensor::empty(std::move(s), DType::F32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
    return t.to(gpu);
  };
  const Tensor q = rnd({B, L, H, D}), k = rnd({B, L, Hkv, D}), v = rnd({B, L, Hkv, D});
  ops::AttentionOptions opt;
  opt.scale = 1.0f / std::sqrt(static_cast<float>(D));
  opt.causal = causal;
  opt.compute = compute;
  if (!causal) {
    Tensor kb = Tensor::zeros({B, L}, DType::F32);
    kb.data<float>()[L - 1] = -1e10f;  // the 25 s chunk's last key
    opt.key_bias = kb.to(gpu);
  }
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> ms;
  for (int r = 0; r < runs + 2; ++r) {
    cudaEventRecord(e0);
    const Tensor out = ops::attention(q, k, v, opt);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (r >= 2) ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return median(ms);
}

void bench_attention(int runs) {
  struct AttnShape {
    const char* name;
    int64_t B, L, H, Hkv, D;
    bool causal;
  };
  for (const AttnShape& s : {AttnShape{"encoder_1251", 1, 1251, 20, 20, 64, false},
                             AttnShape{"prefill_1024", 1, 1024, 28, 4, 128, true}}) {
    // Useful work: QK^T and PV, halved for the causal mask.
    const double flop = 4.0 * s.B * s.L * s.L * s.H * s.D * (s.causal ? 0.5 : 1.0);
    for (DType c : {DType::F32, DType::BF16}) {
      const double ms = time_attention(s.B, s.L, s.H, s.Hkv, s.D, s.causal, c, runs);
      const std::string n =
          std::string("attention_") + s.name + (c == DType::F32 ? "_f32" : "_bf16");
      result((n + "_us").c_str(), ms * 1e3, "us");
      result((n + "_tflops").c_str(), flop / (ms * 1e-3) / 1e12, "TFLOP/s");
    }
  }
}
#endif
}  // namespace

int main(int argc, char** argv) {
  log::init_from_env();
  std::string model, audio = std::string(STEPAUDIO_SHARED_DIR) + "/audio/en_story_11s.wav";
  int runs = 20;
  bool micro = true;  // --micro 0: skip the attention micro-benchmarks (for profiling)
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model"))
      model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--audio"))
      audio = argv[i + 1];
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::max(3, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--micro"))
      micro = std::atoi(argv[i + 1]) != 0;
  }
  if (model.empty()) {
    std::fprintf(stderr,
                 "usage: bench_pipeline_gpu --model DIR [--audio WAV] [--runs N] [--micro 0|1]\n");
    return 2;
  }
#if !STEPAUDIO_CUDA
  std::fprintf(stderr, "bench_pipeline_gpu: this build has no CUDA backend (%d runs asked)\n",
               runs);
  return 1;
#else
  try {
    if (!cuda_available()) throw Error("no usable CUDA GPU");
    const Device gpu = Device::cuda(0);
    using Clock = std::chrono::steady_clock;
    if (micro) bench_attention(runs);
    {
      const Checkpoint ckpt = Checkpoint::open(model);
      const AudioEncoder enc(ckpt, gpu, DType::BF16);
      std::mt19937 rng(7);
      std::uniform_real_distribution<float> u(-1.5f, 1.5f);
      Tensor mel = Tensor::empty({ckpt.config().audio.n_mels, 2502}, DType::F32);
      for (int64_t i = 0; i < mel.numel(); ++i) mel.data<float>()[i] = u(rng);
      mel = mel.to(gpu);
      std::vector<double> ms;
      for (int r = 0; r < runs + 3; ++r) {
        cudaDeviceSynchronize();
        const auto t0 = Clock::now();
        const std::vector<Tensor> rows = enc.encode({mel});  // rows come back to the host
        cudaDeviceSynchronize();
        if (r >= 3)
          ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (rows.empty() || rows[0].dim(0) != 313) throw Error("unexpected adaptor output");
      }
      result("encoder_adaptor_25s_ms", median(ms), "ms");
    }
    Engine engine = Engine::load(model, {.device = gpu});
    Conversation chat;
    chat.system("You are a helpful assistant.").user().audio(audio);
    Sampling greedy{.max_tokens = 1, .greedy = true};
    std::vector<double> ttft, enc_s, pre_s, mel_s;
    int64_t prompt_tokens = 0;
    for (int r = 0; r < std::max(5, runs / 2) + 1; ++r) {
      const Result res = engine.generate(chat, greedy);
      if (r == 0) continue;  // warm-up: plans, handles, allocator
      ttft.push_back(res.timings.first_token_s * 1e3);
      enc_s.push_back(res.timings.encoder_s * 1e3);
      pre_s.push_back(res.timings.prefill_s * 1e3);
      mel_s.push_back((res.timings.audio_s + res.timings.mel_s) * 1e3);
      prompt_tokens = res.timings.prompt_tokens;
    }
    result("ttft_prompt_tokens", static_cast<double>(prompt_tokens), "tokens");
    result("ttft_audio_and_mel_ms", median(mel_s), "ms");
    result("ttft_encoder_ms", median(enc_s), "ms");
    result("ttft_prefill_ms", median(pre_s), "ms");
    result("ttft_ms", median(ttft), "ms");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_pipeline_gpu: %s\n", e.what());
    return 1;
  }
  return 0;
#endif
}
