#include "stepaudio/speech.h"

#include "io/wav_writer.h"
#include "model/token2wav.h"

namespace stepaudio {

namespace {
std::vector<float> samples(const Tensor& t) {
  return t.numel() ? t.to_f32_vector() : std::vector<float>{};
}
}  // namespace

struct Speaker::Impl {
  Token2wav t2w;
  Voice voice;
  Token2wavOptions options;
};

struct Speaker::Stream::Impl {
  Token2wavStream stream;
};

Speaker::Speaker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Speaker::Speaker(Speaker&&) noexcept = default;
Speaker& Speaker::operator=(Speaker&&) noexcept = default;
Speaker::~Speaker() = default;

Speaker Speaker::load(const std::string& token2wav_dir, const std::string& voice_path,
                      const SpeechOptions& o) {
  if (o.flow_steps < 1) fail("speech: flow_steps must be >= 1, got {}", o.flow_steps);
  Token2wavOptions t;
  if (!o.precision.empty())
    t.precision = parse_t2w_precision(o.precision, "speech: SpeechOptions::precision");
  Voice voice = load_voice(voice_path);
  t.seed = o.seed;
  t.n_timesteps = o.flow_steps;
  return Speaker(
      std::make_unique<Impl>(Impl{Token2wav::load(token2wav_dir, o.device), std::move(voice), t}));
}

std::vector<float> Speaker::speak(const std::vector<int32_t>& codes) {
  return samples(impl_->t2w.synthesize(codes, impl_->voice, impl_->options));
}

Speaker::Stream Speaker::stream() {
  return Stream(std::make_unique<Stream::Impl>(
      Stream::Impl{Token2wavStream(impl_->t2w, impl_->voice, impl_->options)}));
}

Speaker::Stream::Stream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Speaker::Stream::Stream(Stream&&) noexcept = default;
Speaker::Stream& Speaker::Stream::operator=(Stream&&) noexcept = default;
Speaker::Stream::~Stream() = default;

std::vector<float> Speaker::Stream::push(const std::vector<int32_t>& codes) {
  if (codes.empty()) return {};
  return samples(impl_->stream.push(codes));
}

std::vector<float> Speaker::Stream::finish() { return samples(impl_->stream.finish()); }

int64_t Speaker::Stream::chunks() const { return impl_->stream.chunks(); }

void save_wav(const std::string& path, const std::vector<float>& s, int sample_rate,
              bool float_samples) {
  write_wav(path, s, sample_rate, float_samples ? WavFormat::Float32 : WavFormat::Pcm16);
}

}  // namespace stepaudio
