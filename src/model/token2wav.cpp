#include "model/token2wav.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/log.h"
#include "model/flow_config.h"
#include "model/t2w_weights.h"
#include "ops/flow_ops.h"
#include "ops/vocoder_ops.h"

namespace stepaudio {

namespace fs = std::filesystem;

namespace {

// The safetensors copy when present (memory-mapped, fast), else the official .pt.
std::string weights_file(const fs::path& dir, const std::string& stem) {
  const fs::path st = dir / (stem + ".safetensors"), pt = dir / (stem + ".pt");
  std::error_code ec;
  if (fs::is_regular_file(st, ec)) return st.string();
  if (fs::is_regular_file(pt, ec)) return pt.string();
  fail("{}: no {}.safetensors or {}.pt (the token2wav {} weights)", dir.string(), stem, stem,
       stem == "flow" ? "flow model" : "HiFT vocoder");
}

Tensor i64_tensor(std::span<const int32_t> ids) {
  Tensor t = Tensor::empty({static_cast<int64_t>(ids.size())}, DType::I64);
  for (size_t i = 0; i < ids.size(); ++i) t.data<int64_t>()[i] = ids[i];
  return t;
}

// Rows [begin, end) of an injected NSF noise table [rows, harmonics + 1].
HiftNoise injected_rows(const HiftNoise& table, int64_t begin, int64_t end) {
  const Tensor& n = table.noise;
  HiftNoise out;
  out.rand_ini = table.rand_ini;
  if (!n.defined()) return out;  // zeros
  if (n.dtype() != DType::F32 || n.ndim() != 2 || n.dim(0) < end)
    fail(
        "token2wav: the injected HiFT noise must be F32 [>= {}, harmonics + 1] (samples up to {}), "
        "got {}",
        end, end, n.desc());
  out.noise = n.slice_rows(begin, end).clone();
  return out;
}

}  // namespace

struct Token2wav::Impl {
  std::string dir;
  Device device;
  FlowConfig config;
  T2wWeights flow_weights, hift_weights;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<HiftGenerator> hift;
  Stats stats;
  std::vector<std::pair<std::string, FlowStreamState>> setups;  // newest last
};

Token2wav::Token2wav(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Token2wav::Token2wav(Token2wav&&) noexcept = default;
Token2wav& Token2wav::operator=(Token2wav&&) noexcept = default;
Token2wav::~Token2wav() = default;

Token2wav Token2wav::load(const std::string& dir, Device device) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("token2wav folder {} does not exist (expected flow.yaml, flow.pt, hift.pt)", dir);
  const fs::path d(dir);
  if (!fs::is_regular_file(d / "flow.yaml", ec))
    fail("{}: no flow.yaml (the token2wav flow configuration)", dir);
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->device = device;
  impl->config = FlowConfig::load((d / "flow.yaml").string());
  impl->flow_weights = T2wWeights::load(weights_file(d, "flow"));
  impl->hift_weights = T2wWeights::load(weights_file(d, "hift"));
  impl->flow = std::make_unique<Flow>(impl->config, impl->flow_weights.fn());
  impl->hift = std::make_unique<HiftGenerator>(impl->hift_weights.fn());
  if (device.is_cuda()) {  // weights uploaded once; every call then runs on the GPU
    impl->flow->to(device);
    impl->hift->to(device);
    impl->flow->set_precision(T2wPrecision::Fast);
    impl->hift->set_precision(T2wPrecision::Fast);
  }
  if (impl->hift->config().in_channels != impl->config.output_size)
    fail("{}: the vocoder takes {} mel bins, the flow makes {}", dir,
         impl->hift->config().in_channels, impl->config.output_size);
  return Token2wav(std::move(impl));
}

const Flow& Token2wav::flow() const { return *impl_->flow; }
HiftGenerator& Token2wav::hift() { return *impl_->hift; }
const std::string& Token2wav::dir() const { return impl_->dir; }
Device Token2wav::device() const { return impl_->device; }
const Token2wav::Stats& Token2wav::last_stats() const { return impl_->stats; }
void Token2wav::set_precision(T2wPrecision p) {
  impl_->flow->set_precision(p);
  impl_->hift->set_precision(p);
}
T2wPrecision Token2wav::precision() const { return impl_->flow->precision(); }

const FlowStreamState* Token2wav::cached_setup(const std::string& key) const {
  for (const auto& [k, st] : impl_->setups)
    if (k == key) return &st;
  return nullptr;
}

void Token2wav::store_setup(std::string key, const FlowStreamState& state) {
  constexpr size_t kMaxVoices = 4;
  if (impl_->setups.size() >= kMaxVoices) impl_->setups.erase(impl_->setups.begin());
  impl_->setups.emplace_back(std::move(key), state);
}

Tensor Token2wav::seeded_frame_noise(uint64_t seed, int64_t begin, int64_t end) const {
  const int64_t O = impl_->config.output_size;
  if (precision() == T2wPrecision::Fast && impl_->device.is_cuda())
    return ops::frame_noise_fast(seed, O, begin, end, impl_->device);
  return ops::frame_noise(seed, O, begin, end);
}
int64_t Token2wav::samples_per_code() const {
  return impl_->config.encoder.up_stride * impl_->hift->config().samples_per_frame();
}

void Token2wav::check_codes(std::span<const int32_t> codes, const std::string& where) const {
  const int64_t vocab = impl_->config.vocab_size;
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] < 0 || codes[i] >= vocab)
      fail("{}: speech code {} at position {} is outside [0, {})", where, codes[i], i, vocab);
}

Tensor Token2wav::synthesize(std::span<const int32_t> codes, const Voice& voice,
                             const Token2wavOptions& o) {
  validate_voice(voice, "token2wav voice");
  if (codes.empty()) fail("token2wav: no speech codes to synthesise");
  check_codes(codes, "token2wav");
  if (o.precision) set_precision(*o.precision);
  const FlowConfig& c = impl_->config;
  const int64_t S = c.encoder.up_stride;
  const int64_t Np = static_cast<int64_t>(voice.prompt_codes.size());
  const int64_t N = static_cast<int64_t>(codes.size());
  const int64_t frames = S * N, spf = impl_->hift->config().samples_per_frame();
  auto record = [&](const std::string& name, const Tensor& t) {
    if (o.trace) o.trace->emplace_back(name, t);
  };
  record("flow/prompt_token", i64_tensor(voice.prompt_codes));
  record("flow/token", i64_tensor(codes));
  record("flow/embedding", voice.speaker_embedding);
  record("flow/prompt_feat", voice.prompt_mel);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const Tensor noise =
      o.flow_noise.defined() ? o.flow_noise : seeded_frame_noise(o.seed, 0, S * (Np + N));
  const Tensor mel = impl_->flow->inference(voice.prompt_codes, codes, voice.prompt_mel,
                                            voice.speaker_embedding, o.n_timesteps, noise, o.trace);
  const auto t1 = clock::now();
  HiftNoise draws;
  if (o.hift_noise) {
    draws = injected_rows(*o.hift_noise, 0, frames * spf);
  } else {
    impl_->hift->reseed(o.seed);
    draws = impl_->hift->draw_noise(frames);
  }
  HiftOutput out = impl_->hift->forward(mel, &draws);
  impl_->stats = {std::chrono::duration<double>(t1 - t0).count(),
                  std::chrono::duration<double>(clock::now() - t1).count()};
  record("hift_gen/mel", mel);
  record("hift_gen/f0", out.f0);
  if (draws.rand_ini.defined()) record("hift_gen/rand_ini", draws.rand_ini);
  if (draws.noise.defined()) record("hift_gen/noise", draws.noise);
  record("hift_gen/s", out.s);
  record("hift_gen/s_stft", out.s_stft);
  record("hift_gen/conv_post", out.conv_post);
  record("hift_gen/wav", out.wav);
  return out.wav.device().is_cpu() ? out.wav : out.wav.to(Device::cpu());
}

Token2wavStream::Token2wavStream(Token2wav& t2w, const Voice& voice, const Token2wavOptions& o)
    : t2w_(t2w), opt_(o), hift_(t2w.hift()) {
  if (o.trace) fail("token2wav stream: tracing works offline only");
  validate_voice(voice, "token2wav voice");
  if (o.precision) t2w.set_precision(*o.precision);
  const FlowConfig& c = t2w.flow().config();
  const int64_t S = c.encoder.up_stride, L = c.encoder.pre_lookahead_len;
  const int64_t Np = static_cast<int64_t>(voice.prompt_codes.size());
  prompt_frames_ = S * Np;
  // As the official set_stream_cache: the prompt's first codes stand in for its look-ahead
  // (cycled when the prompt is shorter than the look-ahead).
  std::vector<int32_t> setup = voice.prompt_codes;
  for (int64_t i = 0; i < L; ++i) setup.push_back(voice.prompt_codes[static_cast<size_t>(i % Np)]);
  seeded_noise_ = !o.flow_noise.defined();
  // Everything the prompt's setup depends on (an injected noise table is not cached).
  std::string key;
  if (seeded_noise_) {
    auto add = [&](const void* p, size_t n) { key.append(static_cast<const char*>(p), n); };
    const uint64_t head[] = {o.seed, static_cast<uint64_t>(o.n_timesteps),
                             static_cast<uint64_t>(t2w.precision()), setup.size()};
    add(head, sizeof(head));
    add(setup.data(), setup.size() * sizeof(int32_t));
    for (const Tensor* t : {&voice.prompt_mel, &voice.speaker_embedding}) {
      const Tensor h = t->device().is_cpu() ? *t : t->to(Device::cpu());
      add(h.raw(), h.nbytes());
    }
  }
  if (const FlowStreamState* hit = seeded_noise_ ? t2w.cached_setup(key) : nullptr) {
    flow_ = *hit;
  } else {
    const Tensor table = seeded_noise_
                             ? t2w.seeded_frame_noise(o.seed, 0, prompt_frames_ + S * kChunkCodes)
                             : o.flow_noise;
    flow_ = t2w.flow().setup_cache(setup, voice.prompt_mel, voice.speaker_embedding, o.n_timesteps,
                                   table);
    if (seeded_noise_) t2w.store_setup(std::move(key), flow_);
  }
  if (!o.hift_noise) t2w.hift().reseed(o.seed);
}

void Token2wavStream::extend_noise(int64_t frames) {
  if (!seeded_noise_) return;
  const int64_t have = flow_.noise.dim(1);
  if (have >= frames) return;
  const int64_t want = std::max(frames, 2 * have);
  flow_.noise = ops::concat_time(flow_.noise, t2w_.seeded_frame_noise(opt_.seed, have, want));
}

Tensor Token2wavStream::run_chunk(std::span<const int32_t> codes, bool last) {
  const FlowConfig& c = t2w_.flow().config();
  const int64_t S = c.encoder.up_stride;
  const int64_t n_new = last ? static_cast<int64_t>(codes.size()) : kChunkCodes;
  extend_noise(flow_.frames() + S * n_new);
  const Tensor mel = t2w_.flow().inference_chunk(codes, last, flow_);
  trim_estimator_cache(flow_, prompt_frames_, kEstimatorCacheTail);

  HiftNoise draws;
  const HiftNoise* inject = nullptr;
  if (opt_.hift_noise) {
    // The injected table is indexed by absolute sample of the generated audio; this call vocodes
    // the cached frames again before the new ones.
    const int64_t spf = t2w_.hift().config().samples_per_frame();
    const int64_t first = frames_done_ - hift_.cached_frames();
    draws = injected_rows(*opt_.hift_noise, first * spf, (frames_done_ + mel.dim(1)) * spf);
    inject = &draws;
  }
  // With a GPU backend this is where the flow and vocoder would go on their own CUDA stream, so
  // that the chunk overlaps the LLM's next decode steps.
  Tensor wav = hift_.push(mel, last, inject);
  frames_done_ += mel.dim(1);
  ++chunks_;
  emitted_ += wav.numel();
  return wav;
}

Tensor Token2wavStream::push(std::span<const int32_t> codes) {
  if (finished_) fail("token2wav stream: push after finish");
  t2w_.check_codes(codes, "token2wav stream");
  buffer_.insert(buffer_.end(), codes.begin(), codes.end());
  pushed_ += static_cast<int64_t>(codes.size());
  const size_t need =
      static_cast<size_t>(kChunkCodes + t2w_.flow().config().encoder.pre_lookahead_len);
  std::vector<float> out;
  while (buffer_.size() >= need) {
    const Tensor wav = run_chunk(std::span<const int32_t>(buffer_.data(), need), false);
    const auto v = wav.to_f32_vector();
    out.insert(out.end(), v.begin(), v.end());
    buffer_.erase(buffer_.begin(), buffer_.begin() + kChunkCodes);
  }
  return Tensor::from_vector(out, {static_cast<int64_t>(out.size())});
}

Tensor Token2wavStream::finish() {
  if (finished_) fail("token2wav stream: finish called twice");
  finished_ = true;
  if (buffer_.empty()) return Tensor::zeros({0}, DType::F32);  // nothing was pushed
  Tensor wav = run_chunk(buffer_, true);
  buffer_.clear();
  return wav.device().is_cpu() ? wav : wav.to(Device::cpu());
}

std::vector<int32_t> parse_codes(const std::string& text, const std::string& where) {
  std::vector<int32_t> codes;
  size_t i = 0, n = 0;
  auto sep = [](char ch) {
    return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
  };
  while (i < text.size()) {
    while (i < text.size() && sep(text[i])) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && !sep(text[j])) ++j;
    const std::string tok = text.substr(i, j - i);
    ++n;
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    if (errno || *end || v < 0 || v >= kSpeechCodebookSize)
      fail("{}: code {} is '{}', expected an integer in [0, {})", where, n,
           tok.size() > 40 ? tok.substr(0, 40) + "..." : tok, kSpeechCodebookSize);
    codes.push_back(static_cast<int32_t>(v));
    i = j;
  }
  if (codes.empty()) fail("{}: no speech codes found", where);
  return codes;
}

std::vector<int32_t> read_codes_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    fail("{}: is a folder, expected a text file of speech codes", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the speech codes file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_codes(ss.str(), path);
}

}  // namespace stepaudio
