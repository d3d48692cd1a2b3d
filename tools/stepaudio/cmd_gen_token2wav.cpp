// stepaudio gen-token2wav: writes a token2wav folder with random weights in the official layout
// (flow.yaml, flow.safetensors, hift.safetensors) plus a random voice, for tests, the demo and
// benchmarks on machines without the real weights. What it speaks is noise.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "io/t2w_writer.h"
#include "model/token2wav.h"

namespace {

struct GenT2wArgs {
  std::string out, preset = "tiny";
  uint64_t seed = 1234;
  int64_t voice_codes = 50;
  bool no_check = false;
};

static stepaudio::cli::Register reg(
    "gen-token2wav", "Write a random-weight token2wav folder (official layout) and a random voice",
    [](CLI::App& sub) {
      auto a = std::make_shared<GenT2wArgs>();
      sub.add_option("-o,--output", a->out, "Output folder (created if missing)")->required();
      sub.add_option("--preset", a->preset,
                     "tiny (golden token2wav-a sizes) or full (official: flow 155.8 M, HiFT "
                     "20.8 M parameters)")
          ->check(CLI::IsMember({"tiny", "full"}))
          ->capture_default_str();
      sub.add_option("--seed", a->seed, "Random seed")->capture_default_str();
      sub.add_option("--voice-codes", a->voice_codes, "Prompt codes of the random voice")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      sub.add_flag("--no-check", a->no_check, "Skip loading the written folder back");
      return [a]() -> int {
        using namespace stepaudio;
        const auto t0 = std::chrono::steady_clock::now();
        const T2wWriteSummary s =
            write_random_token2wav(a->out, t2w_preset(a->preset), a->seed, a->voice_codes);
        if (!a->no_check) Token2wav::load(a->out);  // the engine must accept what we wrote
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "wrote %s: flow %llu parameters, HiFT %llu parameters (random: it speaks noise), "
            "voice.safetensors (%lld prompt codes), %.1f s\n",
            a->out.c_str(), static_cast<unsigned long long>(s.flow_params),
            static_cast<unsigned long long>(s.hift_params), static_cast<long long>(a->voice_codes),
            secs);
        return 0;
      };
    });

}  // namespace
