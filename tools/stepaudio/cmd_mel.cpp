// stepaudio mel AUDIO [-o OUT.safetensors]: the log-mel front end alone. Prints, per 25 s chunk,
// the mel frame count T and the <audio_patch> placeholder count, the device and the timing;
// with -o writes one F32 [128, T] tensor per chunk (chunk0, chunk1, ...), atomically.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "audio/load.h"
#include "audio/mel.h"
#include "command.h"
#include "core/device.h"
#include "io/safetensors.h"

namespace {

struct MelArgs {
  std::string audio, out, device = "auto";
  bool mix = false;
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int run_mel(const MelArgs& a) {
  using namespace stepaudio;
  const Device device = parse_device(a.device);
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> pcm = load_audio_16k(a.audio, DecodeOptions{.mix = a.mix});
  const double load_ms = ms_since(t0);
  const auto chunks = split_chunks(static_cast<int64_t>(pcm.size()));
  std::printf("audio: %s (%zu samples, %.3f s at 16 kHz, %zu chunk%s)\n", a.audio.c_str(),
              pcm.size(), pcm.size() / 16000.0, chunks.size(), chunks.size() == 1 ? "" : "s");

  t0 = std::chrono::steady_clock::now();
  MelExtractor mel(device);
  const double setup_ms = ms_since(t0);
  std::vector<std::span<const float>> clips;
  for (const auto& c : chunks)
    clips.push_back(
        std::span(pcm).subspan(static_cast<size_t>(c.start), static_cast<size_t>(c.length)));
  t0 = std::chrono::steady_clock::now();
  auto mels = mel.compute_batch(clips, /*to_host=*/true);
  const double mel_ms = ms_since(t0);

  std::printf("device: %s\n", mel.device().str().c_str());
  std::vector<std::pair<std::string, Tensor>> named;
  for (size_t k = 0; k < chunks.size(); ++k) {
    const int64_t T = mels[k].dim(1);
    std::printf("chunk%zu: samples [%lld, %lld)  T=%lld  audio_patch=%lld\n", k,
                static_cast<long long>(chunks[k].start),
                static_cast<long long>(chunks[k].start + chunks[k].length),
                static_cast<long long>(T), static_cast<long long>(audio_patch_count(T)));
    named.emplace_back("chunk" + std::to_string(k), mels[k]);
  }
  std::printf("time: load+resample %.2f ms, mel set-up %.2f ms, mel %.3f ms (first call)\n",
              load_ms, setup_ms, mel_ms);
  if (!a.out.empty()) {
    save_safetensors(a.out, named, {{"format", "pt"}});
    std::printf("wrote %s (%zu tensor%s)\n", a.out.c_str(), named.size(),
                named.size() == 1 ? "" : "s");
  }
  return 0;
}

stepaudio::cli::Register reg(
    "mel", "log-mel spectrogram of an audio file (per 25 s chunk)", [](CLI::App& sub) {
      auto a = std::make_shared<MelArgs>();
      sub.add_option("audio", a->audio, "audio file (any rate/format)")->required();
      sub.add_option("-o,--out", a->out, "write chunk tensors here");
      sub.add_option("--device", a->device, "cpu, cuda[:N] or auto")->capture_default_str();
      sub.add_flag("--mix", a->mix, "average channels (default: ch 0)");
      return [a]() -> int { return run_mel(*a); };
    });

}  // namespace
