// The prompt mel of token2wav (spec §7.1 step 4-5): the flow model's target space, 80 log-mel
// bands at 50 Hz from 24 kHz audio. Reflect-pad 720 samples on both sides, 1920-point periodic
// Hann STFT with hop 480 (no centering), magnitude sqrt(re^2 + im^2 + 1e-9), the Slaney bank
// (24 kHz, n_fft 1920, 80 mels, 0-8000 Hz), natural log of max(x, 1e-5).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stepaudio {

namespace prompt_mel {
inline constexpr int kSampleRate = 24000;
inline constexpr int kNFft = 1920;
inline constexpr int kHop = 480;
inline constexpr int kMels = 80;
inline constexpr int kPad = (kNFft - kHop) / 2;  // 720 on each side
inline constexpr int64_t kFramesPerCode = 2;     // 25 Hz codes, 50 Hz mel frames
}  // namespace prompt_mel

// F32 [frames, 80] (CPU), frames = (n + 1440 - 1920) / 480 + 1. Throws Error when the audio is
// too short to reflect-pad (n <= 720 samples) or holds a non-finite sample.
Tensor flow_mel_24k(std::span<const float> wav24k);

// Decodes any format libsndfile reads, averages the channels, resamples to 24 kHz (the
// torchaudio-exact resampler) and returns flow_mel_24k of it. Errors name the file.
Tensor prompt_mel_from_file(const std::string& path);

// The 24 kHz mono samples prompt_mel_from_file works on (mean over channels, resampled).
std::vector<float> load_audio_24k(const std::string& path);

// Forces exactly 2 frames per prompt code: repeats the last frame (replicate padding) or drops
// trailing frames. mel is F32 [frames >= 1, C]; n_codes >= 1.
Tensor fix_prompt_mel_length(const Tensor& mel, int64_t n_codes);

}  // namespace stepaudio
