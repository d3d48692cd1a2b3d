// Writes mono audio as a WAV file through libsndfile, atomically: the data goes to a temporary
// file beside the target, which is renamed into place only once complete, so a failure never
// leaves a partial file.
#pragma once
#include <span>
#include <string>

namespace stepaudio {

enum class WavFormat {
  Pcm16,   // 16-bit PCM, samples clipped to [-1, 1] (what the official stream path emits)
  Float32  // IEEE float, samples as they are
};

// Throws Error naming `path` when the folder does not exist, the file cannot be written, or a
// sample is NaN/Inf.
void write_wav(const std::string& path, std::span<const float> samples, int sample_rate,
               WavFormat format = WavFormat::Pcm16);

// "pcm16" or "float" (as the CLI spells them); Error otherwise.
WavFormat parse_wav_format(const std::string& name);

}  // namespace stepaudio
