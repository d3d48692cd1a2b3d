// The log-mel front end of Step-Audio 2 (spec §2): 16 kHz mono samples, cut into 25 s chunks,
// each turned into a [128, T] Whisper-v3-style log-mel (479 zero samples appended, 400-point
// periodic-Hann STFT, hop 160, last frame dropped, Slaney mel bank, log10, max-8 floor, (x+4)/4),
// plus the number of <audio_patch> placeholders the prompt needs for each chunk.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"

namespace stepaudio {

namespace mel {
inline constexpr int kSampleRate = 16000;
inline constexpr int kNFft = 400;
inline constexpr int kHop = 160;
inline constexpr int kBins = kNFft / 2 + 1;  // 201
inline constexpr int kMels = 128;
inline constexpr int kTailPad = 479;          // zeros appended before the STFT
inline constexpr int kCenterPad = kNFft / 2;  // reflect padding on each side (torch center=True)
inline constexpr int64_t kChunkSamples = 25 * kSampleRate;  // 400 000
}  // namespace mel

// Mel frames of a chunk of n samples: T = (n + 479) // 160 (the STFT's last frame is dropped).
int64_t mel_frames(int64_t num_samples);

// <audio_patch> placeholders for a chunk of T mel frames, the Hugging Face formula
// (utils.compute_token_num): L = T - 2, E = (L + 1) // 2 // 2, n = (E - 1) // 2 + 1.
// The official vLLM path uses T instead of L and gives one more for some lengths (spec §2.1);
// this engine follows the Hugging Face reference (Python floor division, so chunks of <= 320
// samples get 0). Throws Error for T < 2.
int64_t audio_patch_count(int64_t mel_frames);

struct AudioChunk {
  int64_t start = 0;   // first sample
  int64_t length = 0;  // samples, 1 .. 400 000
};
// 25 s chunks, plain cut, no overlap: [0, 400000), [400000, 800000), ... The tail chunk holds the
// remainder; a zero-length tail makes no chunk, so 0 samples give no chunks.
std::vector<AudioChunk> split_chunks(int64_t num_samples);

// Computes log-mels on one device. Construction does the one-off work (filterbank upload, FFT
// plans, workspaces, stream), so hold one extractor and reuse it. Not thread-safe: use one per
// thread. A CUDA extractor that cannot be set up falls back to the CPU with a one-line warning.
class MelExtractor {
 public:
  explicit MelExtractor(Device device = Device::cpu());
  ~MelExtractor();
  MelExtractor(MelExtractor&&) noexcept;
  MelExtractor& operator=(MelExtractor&&) noexcept;

  // The device the work actually runs on (the CPU after a fallback).
  Device device() const { return device_; }

  // F32 [128, T] log-mel of one chunk (any length >= 0; normally <= 400 000 samples). The result
  // lives on device(); samples must be finite.
  Tensor compute(std::span<const float> samples);

  // One tensor per clip, in order, computed together (on CUDA: one FFT, one GEMM for the whole
  // batch). Results stay on device() unless `to_host` is set.
  std::vector<Tensor> compute_batch(std::span<const std::span<const float>> clips,
                                    bool to_host = false);

  // Writes into caller-owned F32 [128, T_i] tensors on device() (no allocation): the path for
  // engines that manage their own buffers. Throws Error when a shape or device does not match.
  void compute_into(std::span<const std::span<const float>> clips, std::span<Tensor> outs);

 private:
  struct CudaPath;
  Device device_;
  std::unique_ptr<CudaPath> cuda_;
};

// Convenience: one chunk on `device` with a temporary extractor (slow on CUDA: plans are rebuilt).
Tensor log_mel(std::span<const float> samples, Device device = Device::cpu());

}  // namespace stepaudio
