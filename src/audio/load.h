// Audio in: decode any file libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...) at any rate
// and channel count, take channel 0 as the official code does (or average the channels), and
// resample to 16 kHz exactly as torchaudio.transforms.Resample does by default (windowed sinc,
// Hann window, lowpass width 6, rolloff 0.99).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace stepaudio {

struct DecodeOptions {
  bool mix = false;  // average all channels instead of taking channel 0
  // A small compressed file can expand to billions of frames; more than this is an error rather
  // than an out-of-memory crash. The default is about 6 hours at 48 kHz.
  int64_t max_frames = int64_t{1} << 30;
};

// Sample rates outside [1, kMaxSampleRate] are rejected: the resampling kernel grows with the
// reduced rate, so an absurd header rate would otherwise cost gigabytes.
inline constexpr int kMaxSampleRate = 1'536'000;

struct PcmAudio {
  std::vector<float> samples;  // mono; integer formats give [-1, 1), float files pass through
  int sample_rate = 0;
  int channels = 0;  // channels in the file
};

// Throws Error naming the file and the problem: missing, a directory, unreadable, empty, not
// audio, truncated header, zero frames, NaN/Inf samples. A file cut short inside its data decodes
// what is there with a warning.
PcmAudio decode_audio(const std::string& path, const DecodeOptions& opts = {});
// Same, from bytes in memory (`name` is used in messages).
PcmAudio decode_audio_memory(const void* data, size_t size, const std::string& name,
                             const DecodeOptions& opts = {});

// torchaudio-compatible windowed-sinc resampling (sinc_interp_hann, width 6, rolloff 0.99):
// output length ceil(len * to / from), zero padding at both ends. Same rates return a copy.
// Rates must be in [1, kMaxSampleRate] and every input sample finite, else Error.
std::vector<float> resample(std::span<const float> in, int from_rate, int to_rate);

// decode_audio + resample to 16 kHz: the samples the model sees.
std::vector<float> load_audio_16k(const std::string& path, const DecodeOptions& opts = {});

}  // namespace stepaudio
