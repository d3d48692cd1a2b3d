// CPU throughput of the model: LLM prefill and decode (KV cache, one token per step) for the
// tiny-a golden checkpoint and a mid-size random model (the "mid" preset: Qwen2.5-0.5B-like
// decoder, ~0.64 B parameters incl. both 158720-row embedding tables, BF16 weights built in
// memory), plus the tiny audio encoder. Counters: tok/s (prefill, decode), and for decode the
// weight bytes streamed per second (GB/s), the roofline of a bandwidth-bound decode.
//
//   bench_cpu_model [--benchmark_filter=Mid] ; STEPAUDIO_THREADS sets the thread count
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "io/checkpoint.h"
#include "io/model_writer.h"
#include "model/encoder.h"
#include "model/llm.h"

namespace stepaudio {
namespace {

namespace fs = std::filesystem;

struct Model {
  std::unique_ptr<Qwen2LM> lm;
  std::unique_ptr<AudioEncoder> enc;
  std::map<std::string, Tensor> mem;  // in-memory weights (mid)
  std::unique_ptr<Checkpoint> ckpt;   // mapped weights (tiny)
  double decode_bytes = 0;            // weight bytes read per decoded token
};

double decode_weight_bytes(const ModelConfig& cfg) {
  double b = 0;
  for (const auto& [name, shape] : tensor_layout(cfg))
    if (name.starts_with("model.layers.") || name == "lm_head.weight" ||
        name == "model.norm.weight")
      b += 2.0 * static_cast<double>(shape_numel(shape));
  return b;
}

// tiny-a from the golden folder (weights only; the tokenizer is not needed here).
Model& tiny() {
  static Model m = [] {
    Model t;
    const fs::path src = fs::path(STEPAUDIO_SHARED_DIR) / "golden" / "tiny-a";
    const fs::path dir = fs::temp_directory_path() / "sa_bench_tiny";
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(src)) {
      const std::string n = e.path().filename().string();
      if (n == "config.json" || n == "model.safetensors.index.json" ||
          (n.starts_with("model-") && n.ends_with(".safetensors"))) {
        fs::remove(dir / n);
        fs::create_symlink(fs::absolute(e.path()), dir / n);
      }
    }
    t.ckpt = std::make_unique<Checkpoint>(Checkpoint::open(dir.string()));
    t.lm = std::make_unique<Qwen2LM>(*t.ckpt);
    t.enc = std::make_unique<AudioEncoder>(*t.ckpt);
    t.decode_bytes = decode_weight_bytes(t.ckpt->config());
    return t;
  }();
  return m;
}

// The "mid" preset with random BF16 LLM weights held in memory.
Model& mid() {
  static Model m = [] {
    Model t;
    const ModelConfig cfg = preset_config("mid");
    uint64_t stream = 0;
    for (const auto& [name, shape] : tensor_layout(cfg)) {
      ++stream;
      if (!name.starts_with("model.") && name != "lm_head.weight") continue;
      Tensor w = Tensor::empty(shape, DType::BF16);
      const auto [mean, std] = init_mean_std(name);
      fill_random_bf16(w.data<uint16_t>(), 0, static_cast<uint64_t>(w.numel()), 1234, stream, mean,
                       std);
      t.mem.emplace(name, w);
    }
    t.lm = std::make_unique<Qwen2LM>(cfg.text, [&t](const std::string& n) { return t.mem.at(n); });
    t.decode_bytes = decode_weight_bytes(cfg);
    return t;
  }();
  return m;
}

std::vector<int32_t> random_ids(int64_t n) {
  std::mt19937 g(7);
  std::uniform_int_distribution<int32_t> d(0, 151000);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& i : ids) i = d(g);
  return ids;
}

void prefill(benchmark::State& state, Model& (*get)()) {
  Model& m = get();
  const int64_t L = state.range(0);
  const std::vector<int32_t> ids = random_ids(L);
  KVCache cache(m.lm->config(), L);
  for (auto _ : state) {
    cache.clear();
    Tensor logits = m.lm->forward(m.lm->embed(ids), cache);
    benchmark::DoNotOptimize(logits.raw());
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(L * state.iterations()), benchmark::Counter::kIsRate);
}

void decode(benchmark::State& state, Model& (*get)()) {
  Model& m = get();
  const int64_t ctx = state.range(0), room = 4096;
  const std::vector<int32_t> ids = random_ids(ctx);
  KVCache cache(m.lm->config(), ctx + room);
  m.lm->forward(m.lm->embed(ids), cache);
  int32_t next = 100;
  for (auto _ : state) {
    if (cache.length() >= ctx + room) cache.truncate(ctx);
    Tensor logits = m.lm->forward(m.lm->embed({&next, 1}), cache);
    next = static_cast<int32_t>(logits.data<float>()[0] > 0 ? 200 : 300);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["tok/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["GB/s"] =
      benchmark::Counter(n * m.decode_bytes / 1e9, benchmark::Counter::kIsRate);
}

void BM_TinyPrefill(benchmark::State& s) { prefill(s, tiny); }
void BM_TinyDecode(benchmark::State& s) { decode(s, tiny); }
void BM_MidPrefill(benchmark::State& s) { prefill(s, mid); }
void BM_MidDecode(benchmark::State& s) { decode(s, mid); }

void BM_TinyEncoder(benchmark::State& state) {
  Model& m = tiny();
  const int64_t T = state.range(0);  // mel frames (100 per second)
  std::mt19937 g(3);
  std::normal_distribution<float> d(0, 0.5f);
  std::vector<float> v(static_cast<size_t>(128 * T));
  for (float& x : v) x = d(g);
  const Tensor mel = Tensor::from_vector(v, {128, T});
  for (auto _ : state) benchmark::DoNotOptimize(m.enc->encode({mel}));
  state.counters["audio_s/s"] =
      benchmark::Counter(static_cast<double>(T) / 100.0 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

BENCHMARK(BM_TinyPrefill)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TinyDecode)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TinyEncoder)->Arg(3000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MidPrefill)
    ->Arg(128)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK(BM_MidDecode)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace
}  // namespace stepaudio

BENCHMARK_MAIN();
