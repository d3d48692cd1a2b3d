#include "audio/prompt_mel.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>

#include <cblas.h>
#include <kiss_fftr.h>

#include "audio/load.h"
#include "audio/mel_filters.h"
#include "core/parallel.h"

namespace stepaudio {

namespace {
using namespace prompt_mel;
constexpr int kBins = kNFft / 2 + 1;  // 961

struct KissDeleter {
  void operator()(kiss_fftr_cfg c) const { kiss_fftr_free(c); }
};
using KissPlan = std::unique_ptr<std::remove_pointer_t<kiss_fftr_cfg>, KissDeleter>;

const std::vector<float>& hann_1920() {
  static const std::vector<float> w = [] {
    std::vector<float> v(kNFft);
    // torch.hann_window(1920) (periodic): the float32 ramp n * (2*pi/N), cos, * -0.5 + 0.5.
    const float step = static_cast<float>(2.0 * std::numbers::pi / kNFft);
    for (int n = 0; n < kNFft; ++n)
      v[static_cast<size_t>(n)] = std::cos(static_cast<float>(n) * step) * -0.5f + 0.5f;
    return v;
  }();
  return w;
}

const std::vector<float>& mel_bank_24k() {
  static const std::vector<float> bank =
      slaney_mel_filterbank(kSampleRate, kNFft, kMels, 0.0, 8000.0);
  return bank;
}
}  // namespace

Tensor flow_mel_24k(std::span<const float> wav) {
  const int64_t n = static_cast<int64_t>(wav.size());
  if (n <= kPad)
    fail(
        "prompt mel: {} samples at 24 kHz is too short; reflect padding needs more than {} "
        "({} ms)",
        n, kPad, kPad * 1000 / kSampleRate);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(wav[static_cast<size_t>(i)]))
      fail("prompt mel: sample {} is {}; expected finite audio", i, wav[static_cast<size_t>(i)]);
  const int64_t frames = (n + 2 * kPad - kNFft) / kHop + 1;
  // Index into the reflect-padded signal (torch F.pad mode 'reflect': the edge is not repeated).
  auto padded = [&](int64_t j) {
    int64_t k = j - kPad;
    if (k < 0) k = -k;
    if (k >= n) k = 2 * (n - 1) - k;
    return wav[static_cast<size_t>(k)];
  };
  std::unique_ptr<float[]> mag(new float[static_cast<size_t>(frames) * kBins]);
  const float* w = hann_1920().data();
  parallel_for(frames, 16, [&](int64_t b, int64_t e) {
    KissPlan plan(kiss_fftr_alloc(kNFft, 0, nullptr, nullptr));
    if (!plan) fail("kissfft: cannot allocate a {}-point real FFT plan", kNFft);
    std::vector<float> frame(kNFft);
    std::vector<kiss_fft_cpx> spec(kBins);
    for (int64_t t = b; t < e; ++t) {
      const int64_t j0 = t * kHop;
      for (int i = 0; i < kNFft; ++i) frame[static_cast<size_t>(i)] = padded(j0 + i) * w[i];
      kiss_fftr(plan.get(), frame.data(), spec.data());
      float* m = mag.get() + t * kBins;
      for (int k = 0; k < kBins; ++k)
        m[k] = std::sqrt(spec[static_cast<size_t>(k)].r * spec[static_cast<size_t>(k)].r +
                         spec[static_cast<size_t>(k)].i * spec[static_cast<size_t>(k)].i + 1e-9f);
    }
  });
  // out[frames, 80] = mag[frames, 961] . bank[80, 961]^T
  Tensor out = Tensor::empty({frames, kMels}, DType::F32);
  float* o = out.data<float>();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(frames), kMels, kBins, 1.0f,
              mag.get(), kBins, mel_bank_24k().data(), kBins, 0.0f, o, kMels);
  for (int64_t i = 0; i < frames * kMels; ++i) o[i] = std::log(std::max(o[i], 1e-5f));
  return out;
}

std::vector<float> load_audio_24k(const std::string& path) {
  DecodeOptions opts;
  opts.mix = true;
  PcmAudio pcm = decode_audio(path, opts);
  return resample(pcm.samples, pcm.sample_rate, kSampleRate);
}

Tensor prompt_mel_from_file(const std::string& path) {
  const std::vector<float> wav = load_audio_24k(path);
  try {
    return flow_mel_24k(wav);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

Tensor fix_prompt_mel_length(const Tensor& mel, int64_t n_codes) {
  if (mel.dtype() != DType::F32 || !mel.device().is_cpu() || mel.ndim() != 2 || mel.dim(0) < 1)
    fail("fix_prompt_mel_length: expected a CPU F32 [frames >= 1, mels] mel, found {}", mel.desc());
  if (n_codes < 1 || n_codes > (int64_t{1} << 40))
    fail("fix_prompt_mel_length: needs at least one prompt code, got {}", n_codes);
  const int64_t want = n_codes * kFramesPerCode, have = mel.dim(0), cols = mel.dim(1);
  Tensor out = Tensor::empty({want, cols}, DType::F32);
  const float* src = mel.data<float>();
  float* dst = out.data<float>();
  const int64_t copy = std::min(want, have);
  std::memcpy(dst, src, static_cast<size_t>(copy * cols) * sizeof(float));
  for (int64_t r = copy; r < want; ++r)
    std::memcpy(dst + r * cols, src + (have - 1) * cols, static_cast<size_t>(cols) * sizeof(float));
  return out;
}

}  // namespace stepaudio
