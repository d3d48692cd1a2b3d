// Speech out beside decoding on one GPU (issue #5: streaming first audio with decode running
// alongside). The LLM decodes one sequence (batch 1, CUDA graph replay, `--ctx` cached rows) on
// this thread and hands one audio code per step to a BackgroundSpeech, whose worker thread runs
// the token2wav stream on its own CUDA stream. Reports, median of --runs utterances (each a new
// worker, as in `stepaudio run --stream`):
//   speech_first_audio_after_chunk_ms: from the step that completes the first chunk's codes
//     (25 + 3 look-ahead) to the worker's first 24 kHz samples;
//   speech_first_audio_after_first_code_ms: from the first code (includes waiting for 28 steps);
//   decode_alone_ms / decode_with_speech_ms: the step time without / with the speech beside it;
//   speech_chunk_alone_ms: the first chunk through Speaker::Stream with the GPU otherwise idle.
//   bench_speech_overlap_gpu --model LLM_DIR --token2wav T2W_DIR [--codes 100] [--ctx 1024]
//                            [--runs 3]
// T2W_DIR holds voice.safetensors as `stepaudio gen-token2wav` writes it.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/device.h"
#include "io/checkpoint.h"
#include "report.h"
#include "stepaudio/speech.h"
#include "stepaudio/speech_background.h"

#if STEPAUDIO_CUDA
#include <cuda_runtime.h>

#include "engine/decode_runner.h"
#include "engine/kv_cache.h"
#include "model/llm.h"
#endif

using namespace stepaudio;
using bench::median;
using bench::now_s;
using bench::result;

int main(int argc, char** argv) {
  std::string model, t2w;
  int codes_n = 100, runs = 3;
  int64_t ctx = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model"))
      model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--token2wav"))
      t2w = argv[i + 1];
    else if (!std::strcmp(argv[i], "--codes"))
      codes_n = std::max(29, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--ctx"))
      ctx = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::max(1, std::atoi(argv[i + 1]));
  }
  if (model.empty() || t2w.empty()) {
    std::fprintf(stderr,
                 "usage: bench_speech_overlap_gpu --model LLM_DIR --token2wav T2W_DIR "
                 "[--codes N] [--ctx N] [--runs N]\n");
    return 2;
  }
#if !STEPAUDIO_CUDA
  std::fprintf(stderr, "bench_speech_overlap_gpu: this build has no CUDA backend (ctx %lld)\n",
               static_cast<long long>(ctx));
  return 1;
#else
  try {
    if (!cuda_available()) throw Error("no usable CUDA GPU");
    const Device gpu = Device::cuda(0);
    const Checkpoint ckpt = Checkpoint::open(model);
    const Qwen2LM lm(ckpt, gpu, DType::BF16);
    Speaker sp = Speaker::load(t2w, t2w + "/voice.safetensors", {.device = gpu, .seed = 1});
    std::mt19937 rng(9);
    std::uniform_int_distribution<int32_t> code(0, 6560);
    std::vector<int32_t> codes(static_cast<size_t>(codes_n));
    for (int32_t& c : codes) c = code(rng);
    const int64_t chunk_codes = 28;  // the first chunk: 25 codes + 3 look-ahead

    // The speech stream alone: its first chunk with the GPU otherwise idle.
    std::vector<double> chunk_alone;
    for (int r = 0; r <= runs; ++r) {
      Speaker::Stream st = sp.stream();
      const double t0 = now_s();
      const auto out = st.push(std::vector<int32_t>(codes.begin(), codes.begin() + chunk_codes));
      const double t = now_s() - t0;
      if (out.empty()) throw Error("the first chunk gave no samples");
      st.finish();
      if (r > 0) chunk_alone.push_back(t);  // run 0 warms up
    }

    KVCache cache = lm.make_cache(ctx + codes_n + 8, 1);
    for (int64_t l = 0; l < cache.num_layers(); ++l) {
      cudaMemset(cache.k(l).raw(), 0, cache.k(l).nbytes());
      cudaMemset(cache.v(l).raw(), 0, cache.v(l).nbytes());
    }
    ops::SampleParams greedy;
    // One utterance: `codes_n` decode steps, with (speech) or without a code pushed after each.
    auto utterance = [&](bool speech, double* after_chunk, double* after_first) {
      DecodeRunner run(lm, cache, 1, true);
      run.set_row(0, 0, ctx, 1000, greedy, {}, 1);
      run.step();  // eager, then captured: not timed
      run.step();
      std::unique_ptr<BackgroundSpeech> bg;
      if (speech) bg = std::make_unique<BackgroundSpeech>(sp);
      std::vector<double> steps;
      double t_first = -1, t_chunk = -1;
      for (int s = 0; s < codes_n; ++s) {
        const double a = now_s();
        run.step();
        steps.push_back(now_s() - a);
        if (bg) {
          bg->push({codes[static_cast<size_t>(s)]});
          if (s == 0) t_first = now_s();
          if (s + 1 == chunk_codes) t_chunk = now_s();
        }
      }
      if (bg) {
        bg->finish();
        const double fa = bg->first_audio_time();
        *after_chunk = fa - t_chunk;
        *after_first = fa - t_first;
      }
      return median(steps);
    };
    double dummy = 0;
    std::vector<double> alone, with, after_chunk, after_first;
    utterance(false, &dummy, &dummy);  // warm-up
    for (int r = 0; r < runs; ++r) {
      alone.push_back(utterance(false, &dummy, &dummy));
      double ac = 0, af = 0;
      with.push_back(utterance(true, &ac, &af));
      after_chunk.push_back(ac);
      after_first.push_back(af);
    }
    result("speech_chunk_alone_ms", median(chunk_alone) * 1e3, "ms");
    result("speech_first_audio_after_chunk_ms", median(after_chunk) * 1e3, "ms");
    result("speech_first_audio_after_first_code_ms", median(after_first) * 1e3, "ms");
    result("decode_alone_ms", median(alone) * 1e3, "ms");
    result("decode_with_speech_ms", median(with) * 1e3, "ms");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_speech_overlap_gpu: %s\n", e.what());
    return 1;
  }
  return 0;
#endif
}
