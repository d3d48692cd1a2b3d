// Speech out while the answer is still being generated, without holding up the generation:
// token2wav runs on a worker thread of its own (and so, on a GPU, on a stream of its own, beside
// the LLM's decode steps). push() hands the new codes over and returns at once with whatever
// audio the worker has finished since the last call.
//
//   auto speaker = stepaudio::Speaker::load(dir, "voice.safetensors", {.device = gpu});
//   stepaudio::BackgroundSpeech speech(speaker);
//   engine.generate(chat, sampling, [&](const stepaudio::Delta& d) {
//     play(speech.push(d.audio_codes));  // never waits for token2wav
//   });
//   play(speech.finish());  // waits for the rest
//
// The samples are those of Speaker::Stream fed the same codes, in the same order.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "stepaudio/speech.h"

namespace stepaudio {

class BackgroundSpeech {
 public:
  // The speaker must outlive this object and not be used by anything else until finish().
  explicit BackgroundSpeech(Speaker& speaker);
  ~BackgroundSpeech();  // stops the worker; audio not taken is dropped
  BackgroundSpeech(const BackgroundSpeech&) = delete;
  BackgroundSpeech& operator=(const BackgroundSpeech&) = delete;

  // Queues codes in [0, 6561) and returns the samples finished so far (maybe none). A failure
  // of the worker is thrown here or by finish().
  std::vector<float> push(const std::vector<int32_t>& codes);
  // Waits for every queued code to be spoken; returns the rest. The stream then ends.
  std::vector<float> finish();

  int64_t chunks() const;  // vocoder chunks produced so far
  // When the worker produced its first samples (steady_clock seconds since its epoch), or -1.
  double first_audio_time() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepaudio
