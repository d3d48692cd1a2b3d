// Speech out: turns the audio codes of a spoken answer (Result::audio_codes, Delta::audio_codes)
// into 24 kHz mono samples with a voice, offline or while the answer is still being generated.
//
//   auto speaker = stepaudio::Speaker::load("Step-Audio-2-mini/token2wav", "voice.safetensors");
//   auto stream = speaker.stream();
//   auto result = engine.generate(chat, sampling, [&](const stepaudio::Delta& d) {
//     play(stream.push(d.audio_codes));  // samples come out every 25 codes (1 s of speech)
//   });
//   play(stream.finish());
//   // or, after the answer: stepaudio::save_wav("answer.wav", speaker.speak(result.audio_codes));
//
// Errors are thrown as stepaudio::Error naming the file, the code or the field at fault.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"

namespace stepaudio {

struct SpeechOptions {
  Device device = Device::cpu();
  uint64_t seed = 0;    // the random sources of the flow and the vocoder
  int flow_steps = 10;  // flow-matching Euler steps (the official 10)
  // GPU numerics: "fp32" (exact, as the official code) or "fast" (TF32 products, bf16 attention,
  // noise drawn on the GPU); empty: fast on a GPU, fp32 on the CPU (which computes fp32 either
  // way).
  std::string precision = {};
};

class Speaker {
 public:
  static constexpr int kSampleRate = 24000;

  // `token2wav_dir`: flow.yaml, flow.pt|.safetensors, hift.pt|.safetensors (the official
  // token2wav folder); `voice_path`: a voice file (stepaudio make-voice).
  static Speaker load(const std::string& token2wav_dir, const std::string& voice_path,
                      const SpeechOptions& options = {});

  Speaker(Speaker&&) noexcept;
  Speaker& operator=(Speaker&&) noexcept;
  ~Speaker();

  // Codes in [0, 6561), at least one -> 960 samples per code.
  std::vector<float> speak(const std::vector<int32_t>& codes);

  // Chunked synthesis (25 codes + 3 look-ahead per chunk, cross-faded vocoder chunks). The
  // Speaker must outlive the stream, and only one stream or speak() runs at a time.
  class Stream {
   public:
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;
    ~Stream();
    std::vector<float> push(const std::vector<int32_t>& codes);  // samples now final (maybe none)
    std::vector<float> finish();                                 // the rest; the stream ends
    int64_t chunks() const;

   private:
    friend class Speaker;
    struct Impl;
    explicit Stream(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  Stream stream();

 private:
  struct Impl;
  explicit Speaker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes mono samples as a WAV file (16-bit PCM, or 32-bit float when `float_samples`),
// atomically: on error nothing is left behind.
void save_wav(const std::string& path, const std::vector<float>& samples,
              int sample_rate = Speaker::kSampleRate, bool float_samples = false);

}  // namespace stepaudio
