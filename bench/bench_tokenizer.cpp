// Tokenizer throughput. The text is built deterministically from the golden tokenizer strings
// (golden/tokenizer/cases.jsonl: prose, CJK, emoji, code, control tokens…) joined by newlines and
// repeated to 4 MiB; bench/hf_tokenizer_baseline.py builds the same text for the HF library.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace {

namespace fs = std::filesystem;
const fs::path kShared = STEPAUDIO_SHARED_DIR;

const stepaudio::text::Tokenizer& tokenizer() {
  static const auto t = stepaudio::text::Tokenizer::load(kShared / "stepaudio2-mini");
  return t;
}

const std::string& corpus() {
  static const std::string text = [] {
    const fs::path p = kShared / "golden" / "tokenizer" / "cases.jsonl";
    std::ifstream f(p);
    if (!f) throw std::runtime_error("missing " + p.string());
    std::string one, line;
    while (std::getline(f, line))
      if (!line.empty()) one += nlohmann::json::parse(line).at("text").get<std::string>() + "\n";
    std::string all;
    while (all.size() < (4u << 20)) all += one;
    return all;
  }();
  return text;
}

void BM_Encode(benchmark::State& state) {
  const auto& tok = tokenizer();
  const std::string& text = corpus();
  size_t n = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text);
    n = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["ids"] = static_cast<double>(n);
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(text.size()) / 1e6,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Encode)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Decode(benchmark::State& state) {
  const auto& tok = tokenizer();
  const auto ids = tok.encode(corpus());
  for (auto _ : state) benchmark::DoNotOptimize(tok.decode(ids).data());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StreamDecode(benchmark::State& state) {
  const auto& tok = tokenizer();
  const auto ids = tok.encode(corpus().substr(0, 1 << 20));
  for (auto _ : state) {
    stepaudio::text::StreamDecoder d(tok);
    size_t bytes = 0;
    for (int32_t id : ids) bytes += d.push(id).size();
    benchmark::DoNotOptimize(bytes += d.finish().size());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}
BENCHMARK(BM_StreamDecode)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Load(benchmark::State& state) {
  for (auto _ : state) {
    auto t = stepaudio::text::Tokenizer::load(kShared / "stepaudio2-mini");
    benchmark::DoNotOptimize(t.vocab_size());
  }
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
