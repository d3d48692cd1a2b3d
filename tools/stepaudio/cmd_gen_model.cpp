// stepaudio gen-model: writes a random-weight Step-Audio 2 checkpoint in the official layout, for
// tests and benchmarks on machines without the real weights.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/model_writer.h"

namespace {

struct GenModelArgs {
  std::string out, preset = "tiny", config, tokenizer;
  uint64_t seed = 1234;
  double shard_mb = 5000;
  bool no_check = false;
};

static stepaudio::cli::Register reg(
    "gen-model", "Write a random-weight checkpoint (official layout) for tests and benchmarks",
    [](CLI::App& sub) {
      auto a = std::make_shared<GenModelArgs>();
      sub.add_option("-o,--output", a->out, "Output folder (created if missing)")->required();
      sub.add_option("--preset", a->preset,
                     "Model size: tiny (golden tiny-a sizes), mid (~0.6 B params) or full "
                     "(official 8.3 B)")
          ->check(CLI::IsMember({"tiny", "mid", "full"}))
          ->capture_default_str();
      sub.add_option("--config", a->config,
                     "Take the sizes from this config.json instead of a preset")
          ->check(CLI::ExistingFile);
      sub.add_option("--seed", a->seed, "Random seed")->capture_default_str();
      sub.add_option("--shard-mb", a->shard_mb,
                     "Most tensor megabytes (10^6 bytes) per shard; the official shards use 5000")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      sub.add_option("--tokenizer", a->tokenizer,
                     "Folder with vocab.json, merges.txt, ... to copy (default: the installed "
                     "share/stepaudio/tokenizer or the source tree's assets/tokenizer)");
      sub.add_flag("--no-check", a->no_check, "Skip re-opening the written checkpoint");
      return [a]() -> int {
        using namespace stepaudio;
        const ModelConfig cfg =
            a->config.empty() ? preset_config(a->preset) : ModelConfig::load(a->config);
        ModelWriteOptions opt;
        opt.seed = a->seed;
        opt.shard_bytes = static_cast<uint64_t>(a->shard_mb * 1e6);
        if (opt.shard_bytes == 0) fail("--shard-mb {} is too small", a->shard_mb);
        opt.tokenizer_dir = a->tokenizer;
        opt.show_progress = true;
        const auto t0 = std::chrono::steady_clock::now();
        const ModelWriteSummary s = write_random_model(a->out, cfg, opt);
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "wrote %s: %llu parameters, %.3f GB of BF16 weights in %zu shard(s), %.1f s "
            "(%.2f GB/s)\n",
            a->out.c_str(), static_cast<unsigned long long>(s.params),
            static_cast<double>(s.bytes) / 1e9, s.shards, secs,
            static_cast<double>(s.bytes) / 1e9 / secs);
        if (!a->no_check) {
          const Checkpoint ck = Checkpoint::open(a->out, true);
          std::printf("checked: %zu tensors present with the expected shapes\n", ck.names().size());
        }
        return 0;
      };
    });

}  // namespace
