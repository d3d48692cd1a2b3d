// stepaudio bench: decode speed of a checkpoint on this machine, the way the engine decodes —
// one prefill of --ctx tokens per sequence, then DecodeRunner steps for --batch sequences
// (decode_step + device sampling, replayed as a CUDA graph on the GPU). Prints load time,
// prefill tok/s and decode ms/step and tok/s; the GPU benchmarks with roofline figures and the
// PyTorch baselines are bench/bench_llm_gpu and scripts/gpu-check.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "core/device.h"
#include "engine/decode_runner.h"
#include "io/checkpoint.h"
#include "model/llm.h"

namespace {

struct BenchArgs {
  std::string model, device = "auto", precision = "bf16";
  int64_t ctx = 1024, batch = 1, steps = 32;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int bench(const BenchArgs& a) {
  using namespace stepaudio;
  const Device device = parse_device(a.device);
  const DType weights = a.precision == "f32"   ? DType::F32
                        : a.precision == "f16" ? DType::F16
                                               : DType::BF16;
  auto t0 = std::chrono::steady_clock::now();
  const Checkpoint ckpt = Checkpoint::open(a.model);
  const Qwen2LM lm(ckpt, device, weights);
  const double load_s = seconds_since(t0);
  const int64_t limit = lm.config().max_position_embeddings;
  if (a.ctx + a.steps + 1 > limit)
    fail("bench: --ctx {} + --steps {} exceed the model's {} positions", a.ctx, a.steps, limit);
  KVCache cache = lm.make_cache(a.ctx + a.steps + 1, a.batch);
  // Prompts of the requested length (the ids do not matter to the timing).
  std::vector<int32_t> ids(static_cast<size_t>(a.ctx));
  const int64_t vocab = std::min<int64_t>(lm.config().vocab_size, 151000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919 + 11) % vocab);
  t0 = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < a.batch; ++b) lm.forward(lm.embed(ids), cache, false, nullptr, b);
  const double prefill_s = seconds_since(t0);

  DecodeRunner run(lm, cache, a.batch);
  ops::SampleParams greedy;
  for (int64_t b = 0; b < a.batch; ++b) run.set_row(b, b, a.ctx, ids.back(), greedy, ids, 1);
  std::vector<double> step_s;
  for (int64_t s = 0; s < a.steps; ++s) {
    t0 = std::chrono::steady_clock::now();
    run.step();
    step_s.push_back(seconds_since(t0));
  }
  // The first steps run eagerly and capture the graph: the median leaves them out of the way.
  std::sort(step_s.begin(), step_s.end());
  const double t = step_s[step_s.size() / 2];
  std::printf("model      %s on %s (%s weights), loaded in %.2f s\n", a.model.c_str(),
              device.str().c_str(), a.precision.c_str(), load_s);
  std::printf("prefill    %lld x %lld tokens: %.0f tok/s\n", static_cast<long long>(a.batch),
              static_cast<long long>(a.ctx), a.batch * a.ctx / prefill_s);
  std::printf("decode     batch %lld at %lld context: %.3f ms/step, %.1f tok/s%s\n",
              static_cast<long long>(a.batch), static_cast<long long>(a.ctx), t * 1e3, a.batch / t,
              run.graphed() ? " (CUDA graph)" : "");
  return 0;
}

static stepaudio::cli::Register reg(
    "bench", "Decode speed of a checkpoint here: prefill, then batched decode steps",
    [](CLI::App& sub) {
      auto a = std::make_shared<BenchArgs>();
      sub.add_option("-m,--model", a->model, "Checkpoint folder")->required();
      sub.add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
      sub.add_option("--precision", a->precision, "GPU weights: bf16, f16 or f32")
          ->check(CLI::IsMember({"bf16", "f16", "f32"}))
          ->capture_default_str();
      sub.add_option("--ctx", a->ctx, "Context length (prompt tokens per sequence)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      sub.add_option("--batch", a->batch, "Sequences decoded together")
          ->check(CLI::Range(1, 4096))
          ->capture_default_str();
      sub.add_option("--steps", a->steps, "Decode steps to time")
          ->check(CLI::Range(3, 100000))
          ->capture_default_str();
      return [a]() -> int { return bench(*a); };
    });

}  // namespace
