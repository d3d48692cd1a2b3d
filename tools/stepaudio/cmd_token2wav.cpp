// stepaudio token2wav --token2wav DIR --voice VOICE --codes CODES -o out.wav: speaks saved
// speech codes (as `run --audio-codes` writes them) with a voice. --inject takes the random
// draws from a safetensors file under the golden names (flow/noise, hift_gen/noise), --trace
// writes the intermediates under the golden names, so a golden case can be reproduced from the
// command line. --stream runs the chunked path (25 + 3 codes per chunk) as the engine does while
// the LLM is still talking.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/wav_writer.h"
#include "model/token2wav.h"

namespace {

using namespace stepaudio;
namespace fs = std::filesystem;

struct Token2wavArgs {
  std::string dir, voice, codes, out, inject, trace, device = "auto", format = "pcm16", precision;
  uint64_t seed = 0;
  int steps = 10;
  bool stream = false;
};

// flow/noise and hift_gen/noise (+ hift_gen/rand_ini) from a safetensors file, as owned copies.
void read_injection(const std::string& path, Token2wavOptions& o) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  auto f32 = [&](const char* name) {
    Tensor t = f.get(name);
    if (t.dtype() != DType::F32) fail("{}: tensor '{}' is {}, expected F32", path, name, t.desc());
    return t.clone();
  };
  if (f.has("flow/noise")) {
    o.flow_noise = f32("flow/noise");
    if (o.flow_noise.ndim() != 2)
      fail("{}: tensor 'flow/noise' is {}, expected F32 [80, frames]", path, o.flow_noise.desc());
  }
  if (f.has("hift_gen/noise")) {
    HiftNoise n;
    n.noise = f32("hift_gen/noise");
    if (f.has("hift_gen/rand_ini")) n.rand_ini = f32("hift_gen/rand_ini");
    o.hift_noise = n;
  }
  if (!o.flow_noise.defined() && !o.hift_noise)
    fail("{}: holds neither 'flow/noise' nor 'hift_gen/noise' (nothing to inject)", path);
}

void check_output_folder(const std::string& path, const char* what) {
  const fs::path parent = fs::absolute(path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    fail("{} {}: folder {} does not exist", what, path, parent.string());
}

int run_token2wav(const Token2wavArgs& a) {
  const WavFormat format = parse_wav_format(a.format);
  if (a.stream && !a.trace.empty()) fail("--trace records the offline path; drop --stream");
  if (a.steps < 1) fail("--steps must be >= 1, got {}", a.steps);
  check_output_folder(a.out, "-o");
  if (!a.trace.empty()) check_output_folder(a.trace, "--trace");
  // Cheap inputs first, so a typo fails before the weights load.
  Token2wavOptions opt;
  if (!a.precision.empty()) opt.precision = parse_t2w_precision(a.precision, "--t2w-precision");
  const std::vector<int32_t> codes = read_codes_file(a.codes);
  const Voice voice = load_voice(a.voice);
  opt.seed = a.seed;
  opt.n_timesteps = a.steps;
  if (!a.inject.empty()) read_injection(a.inject, opt);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  Token2wav t2w = Token2wav::load(a.dir, parse_device(a.device));
  t2w.check_codes(codes, a.codes);
  const auto t1 = clock::now();
  std::vector<float> wav;
  double first_audio_s = -1;
  FlowTrace trace;
  if (a.stream) {
    // The codes arrive one at a time, as from the LLM.
    Token2wavStream s(t2w, voice, opt);
    auto take = [&](const Tensor& piece) {
      if (piece.numel() > 0 && first_audio_s < 0)
        first_audio_s = std::chrono::duration<double>(clock::now() - t1).count();
      const auto v = piece.to_f32_vector();
      wav.insert(wav.end(), v.begin(), v.end());
    };
    for (size_t i = 0; i < codes.size(); ++i) take(s.push(std::span(codes).subspan(i, 1)));
    take(s.finish());
  } else {
    if (!a.trace.empty()) opt.trace = &trace;
    wav = t2w.synthesize(codes, voice, opt).to_f32_vector();
  }
  const auto t2 = clock::now();
  write_wav(a.out, wav, kToken2wavSampleRate, format);
  if (!a.trace.empty()) save_safetensors(a.trace, trace, {{"format", "pt"}});

  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double synth_s = std::chrono::duration<double>(t2 - t1).count();
  const double audio_s = static_cast<double>(wav.size()) / kToken2wavSampleRate;
  std::fflush(stdout);
  std::printf("%zu codes -> %zu samples (%.2f s at 24 kHz, %s) -> %s\n", codes.size(), wav.size(),
              audio_s, a.format.c_str(), a.out.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "load %.3f s | synthesis %.3f s (real-time factor %.3f)", load_s, synth_s,
               audio_s > 0 ? synth_s / audio_s : 0.0);
  if (a.stream)
    std::fprintf(stderr, " | first audio after %.3f s", first_audio_s);
  else
    std::fprintf(stderr, " | flow %.3f s, vocoder %.3f s", t2w.last_stats().flow_s,
                 t2w.last_stats().hift_s);
  std::fprintf(stderr, "\n");
  if (!a.trace.empty())
    std::printf("wrote %zu traced tensors to %s\n", trace.size(), a.trace.c_str());
  return 0;
}

stepaudio::cli::Register reg(
    "token2wav", "Speak speech codes with a voice (flow + HiFT vocoder) into a 24 kHz WAV",
    [](CLI::App& sub) {
      auto a = std::make_shared<Token2wavArgs>();
      sub.add_option("--token2wav", a->dir,
                     "token2wav folder: flow.yaml, flow.pt|.safetensors, hift.pt|.safetensors")
          ->required();
      sub.add_option("--voice", a->voice, "voice file (make-voice, gen-token2wav)")->required();
      sub.add_option("--codes", a->codes,
                     "text file of speech codes in [0, 6561), whitespace- or comma-separated")
          ->required();
      sub.add_option("-o,--out", a->out, "WAV file to write (24 kHz mono)")->required();
      sub.add_option("--format", a->format, "WAV samples: pcm16 or float")
          ->capture_default_str()
          ->check(CLI::IsMember({"pcm16", "float"}));
      sub.add_option("--inject", a->inject,
                     "safetensors with flow/noise [80, frames] and/or hift_gen/noise [480 F, 9]");
      sub.add_option("--trace", a->trace,
                     "write the intermediates (flow/*, hift_gen/*) to this safetensors file");
      sub.add_flag("--stream", a->stream, "chunked synthesis (25 + 3 codes), as while decoding");
      sub.add_option("--seed", a->seed, "seed of the flow noise and the NSF draws")
          ->capture_default_str();
      sub.add_option("--steps", a->steps, "flow-matching Euler steps")->capture_default_str();
      sub.add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
      sub.add_option("--t2w-precision", a->precision,
                     "GPU numerics: fp32 (exact) or fast (TF32 products, bf16 attention, noise "
                     "drawn on the GPU); default fast on a GPU, fp32 on the CPU");
      return [a]() -> int { return run_token2wav(*a); };
    });

}  // namespace
