// Arbitrary bytes -> decode_audio_memory (both channel modes) -> resample. An Error is the expected
// answer to bad input; anything else (a crash, a sanitizer report, another exception) is a bug.
// Seeds: fuzz/corpus/audio_decode/ (tiny WAV, FLAC, Ogg/Vorbis, MP3, AIFF, AU files).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "audio/load.h"
#include "core/error.h"
#include "core/log.h"
#include "core/parallel.h"

namespace {

void check_output(const std::vector<float>& y, std::span<const float> x, int from, int to) {
  const int64_t want =
      (static_cast<int64_t>(to) * static_cast<int64_t>(x.size()) + from - 1) / from;
  if (static_cast<int64_t>(y.size()) != want) std::abort();
  // Finite input of moderate size must give finite output (huge float samples may overflow).
  float peak = 0;
  for (float v : x) peak = std::max(peak, std::abs(v));
  if (peak > 1e6f) return;
  for (float v : y)
    if (!std::isfinite(v)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool setup = [] {
    spdlog::set_level(spdlog::level::off);  // truncation warnings would flood the fuzzer log
    // Inputs are tiny: OpenMP wake-ups would cost more than the work (threading is unit-tested).
    stepaudio::set_num_threads(1);
    return true;
  }();
  (void)setup;
  stepaudio::DecodeOptions opts;
  // Small compressed inputs can claim millions of frames; keep each run fast.
  opts.max_frames = 1 << 18;
  opts.mix = size > 0 && (data[size - 1] & 1);
  stepaudio::PcmAudio pcm;
  try {
    pcm = stepaudio::decode_audio_memory(data, size, "fuzz input", opts);
  } catch (const stepaudio::Error&) {
    return 0;
  }
  if (pcm.samples.empty() || pcm.sample_rate < 1 || pcm.channels < 1) std::abort();
  for (float v : pcm.samples)
    if (!std::isfinite(v)) std::abort();  // decode promised finite samples

  // The resampler on whatever rate the header claimed, to the two rates the engine uses. Inputs
  // are cut so that one run stays fast, also when a tiny claimed rate means a large upsampling.
  for (int to : {16000, 24000}) {
    const int64_t cap = std::clamp<int64_t>(int64_t{1 << 16} * pcm.sample_rate / to, 1, 1 << 15);
    const std::span<const float> in(pcm.samples.data(),
                                    std::min<size_t>(pcm.samples.size(), static_cast<size_t>(cap)));
    check_output(stepaudio::resample(in, pcm.sample_rate, to), in, pcm.sample_rate, to);
  }
  return 0;
}

// libsndfile 1.2.0 leaks the vorbis_info it initialises when an Ogg/Vorbis header fails to parse
// (vorbis_info_init inside sf_open_virtual, 5784 bytes per bad file; the error path never calls
// vorbis_info_clear). That is a library bug outside our code, reported rather than fixed here;
// suppress exactly that allocation site so the fuzzer keeps looking for everything else.
extern "C" const char* __lsan_default_suppressions() { return "leak:vorbis_info_init\n"; }
