#include "audio/mel.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/mel_cpu.h"
#include "core/error.h"
#include "core/log.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/mel_cuda.h"
#endif

namespace stepaudio {

int64_t mel_frames(int64_t num_samples) {
  if (num_samples < 0) fail("mel_frames: negative sample count {}", num_samples);
  return (num_samples + mel::kTailPad) / mel::kHop;
}

int64_t audio_patch_count(int64_t mel_frames) {
  if (mel_frames < 2)
    fail("audio_patch_count: a chunk has at least 2 mel frames (the 479-sample pad), got {}",
         mel_frames);
  const int64_t valid = mel_frames - 2;             // frames handed to the encoder
  const int64_t encoder_len = (valid + 1) / 2 / 2;  // conv stride 2, then avg-pool 2
  // Adaptor conv k=3, s=2, p=1 with Python's floor division: an encoder length of 0 (chunks of
  // at most 320 samples) gives (0 - 1) // 2 + 1 = 0 placeholders, not C++'s 1.
  const int64_t num = encoder_len + 2 * 1 - 3;
  const int64_t floor_half = num >= 0 ? num / 2 : -((-num + 1) / 2);
  return floor_half + 1;
}

std::vector<AudioChunk> split_chunks(int64_t num_samples) {
  if (num_samples < 0) fail("split_chunks: negative sample count {}", num_samples);
  std::vector<AudioChunk> out;
  for (int64_t s = 0; s < num_samples; s += mel::kChunkSamples)
    out.push_back({s, std::min(mel::kChunkSamples, num_samples - s)});
  return out;
}

#if STEPAUDIO_CUDA
struct MelExtractor::CudaPath {
  cuda::MelCuda mel;
  explicit CudaPath(int device) : mel(device) {}
};
#else
struct MelExtractor::CudaPath {};
#endif

MelExtractor::MelExtractor(Device device) : device_(device) {
  if (device.is_cpu()) return;
#if STEPAUDIO_CUDA
  if (!cuda_available()) {
    log::warn("mel: CUDA unavailable; computing log-mels on the CPU");
    device_ = Device::cpu();
    return;
  }
  try {
    cuda_ = std::make_unique<CudaPath>(device.index);
  } catch (const Error& e) {
    log::warn("mel: CUDA set-up failed ({}); computing log-mels on the CPU", e.what());
    device_ = Device::cpu();
  }
#else
  log::warn("mel: this build has no CUDA backend; computing log-mels on the CPU");
  device_ = Device::cpu();
#endif
}

MelExtractor::~MelExtractor() = default;
MelExtractor::MelExtractor(MelExtractor&&) noexcept = default;
MelExtractor& MelExtractor::operator=(MelExtractor&&) noexcept = default;

Tensor MelExtractor::compute(std::span<const float> samples) {
  std::span<const float> one[] = {samples};
  return std::move(compute_batch(one).front());
}

std::vector<Tensor> MelExtractor::compute_batch(std::span<const std::span<const float>> clips,
                                                bool to_host) {
  std::vector<Tensor> out;
#if STEPAUDIO_CUDA
  if (cuda_) return cuda_->mel.run(clips, to_host);
#endif
  (void)to_host;  // CPU results are already on the host
  out.reserve(clips.size());
  for (const auto& c : clips) {
    Tensor t = Tensor::empty({mel::kMels, mel_frames(static_cast<int64_t>(c.size()))}, DType::F32);
    cpu::log_mel(c, t.data<float>());
    out.push_back(std::move(t));
  }
  return out;
}

void MelExtractor::compute_into(std::span<const std::span<const float>> clips,
                                std::span<Tensor> outs) {
  if (outs.size() != clips.size())
    fail("mel: {} output tensors for {} clips", outs.size(), clips.size());
  std::vector<float*> ptrs(clips.size());
  for (size_t i = 0; i < clips.size(); ++i) {
    const Tensor& o = outs[i];
    const Shape want = {mel::kMels, mel_frames(static_cast<int64_t>(clips[i].size()))};
    if (!o.defined() || o.dtype() != DType::F32 || o.shape() != want || o.device() != device_)
      fail("mel: output {} must be F32{} on {}, got {}", i, shape_str(want), device_.str(),
           o.defined() ? o.desc() : std::string("an undefined tensor"));
    ptrs[i] = o.data<float>();
  }
#if STEPAUDIO_CUDA
  if (cuda_) {
    cuda_->mel.run_into(clips, ptrs);
    return;
  }
#endif
  for (size_t i = 0; i < clips.size(); ++i) cpu::log_mel(clips[i], ptrs[i]);
}

Tensor log_mel(std::span<const float> samples, Device device) {
  MelExtractor m(device);
  return m.compute(samples);
}

}  // namespace stepaudio
