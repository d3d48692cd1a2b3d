#include "io/wav_writer.h"

#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"

namespace stepaudio {

namespace fs = std::filesystem;

WavFormat parse_wav_format(const std::string& name) {
  if (name == "pcm16") return WavFormat::Pcm16;
  if (name == "float") return WavFormat::Float32;
  fail("unknown WAV sample format '{}' (expected pcm16 or float)", name);
}

void write_wav(const std::string& path, std::span<const float> samples, int sample_rate,
               WavFormat format) {
  if (sample_rate <= 0) fail("{}: bad sample rate {}", path, sample_rate);
  for (size_t i = 0; i < samples.size(); ++i)
    if (!std::isfinite(samples[i]))
      fail("{}: sample {} is {}, refusing to write a WAV with non-finite samples", path, i,
           samples[i]);
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) fail("{}: folder {} does not exist", path, folder.string());
  if (fs::is_directory(target, ec)) fail("{}: is a folder", path);
  const fs::path tmp =
      folder / (".tmp-" + target.filename().string() + "-" + std::to_string(::getpid()));

  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | (format == WavFormat::Pcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT);
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) fail("{}: cannot write: {}", path, sf_strerror(nullptr));
  // Without clipping, libsndfile wraps out-of-range floats around in PCM.
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t n = static_cast<sf_count_t>(samples.size());
  const sf_count_t written = n ? sf_writef_float(f, samples.data(), n) : 0;
  const std::string err = written == n ? "" : sf_strerror(f);
  const int closed = sf_close(f);
  if (written != n || closed != 0) {
    fs::remove(tmp, ec);
    fail("{}: writing failed after {} of {} samples: {}", path, written, n,
         err.empty() ? "close failed (disk full?)" : err);
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ec2;
    fs::remove(tmp, ec2);
    fail("{}: cannot move the finished file into place: {}", path, ec.message());
  }
}

}  // namespace stepaudio
