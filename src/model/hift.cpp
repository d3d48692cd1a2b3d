#include "model/hift.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"
#include "ops/stft_ops.h"
#include "ops/vocoder_ops.h"

namespace stepaudio {

namespace {

constexpr float kF0EluAlpha = 1.f;
constexpr float kPostLreluSlope = 0.01f;  // F.leaky_relu's default, used before conv_post
constexpr float kMaxMagnitude = 100.f;    // the iSTFT clips exp(log-magnitude) here
constexpr int64_t kCondnetLayers = 5;

Tensor require(const WeightFn& get, const std::string& name) {
  Tensor t = get(name);
  if (!t.defined()) fail("HiFT weight '{}' is missing", name);
  return t;
}

// t on device d (no copy when it is there already).
Tensor on(const Tensor& t, Device d) { return !t.defined() || t.device() == d ? t : t.to(d); }

// "same" padding of a dilated odd kernel.
int64_t same_pad(int64_t k, int64_t d) { return d * (k - 1) / 2; }

}  // namespace

int64_t HiftConfig::samples_per_frame() const {
  int64_t n = hop;
  for (int64_t r : upsample_rates) n *= r;
  return n;
}

HiftConfig HiftConfig::from_weights(const WeightFn& get) {
  HiftConfig c;
  const Tensor pre = require(get, "conv_pre.weight");
  if (pre.ndim() != 3)
    fail("HiFT weight 'conv_pre.weight': expected [base_channels, in_channels, 7], found {}",
         shape_str(pre.shape()));
  c.base_channels = pre.dim(0);
  c.in_channels = pre.dim(1);
  const Tensor cond = require(get, "f0_predictor.condnet.0.weight");
  if (cond.ndim() != 3)
    fail("HiFT weight 'f0_predictor.condnet.0.weight': expected [cond_channels, {}, 3], found {}",
         c.in_channels, shape_str(cond.shape()));
  c.cond_channels = cond.dim(0);
  const int64_t min_base = int64_t{1} << c.upsample_rates.size();
  if (c.base_channels % min_base != 0)
    fail("HiFT weight 'conv_pre.weight': base_channels {} must be divisible by {}", c.base_channels,
         min_base);
  return c;
}

HiftGenerator::ResBlock HiftGenerator::load_resblock(const WeightFn& get, const std::string& p,
                                                     int64_t ch, int64_t kernel,
                                                     const std::vector<int64_t>& dilations) {
  ResBlock rb;
  rb.kernel = kernel;
  rb.dilations = dilations;
  for (size_t m = 0; m < dilations.size(); ++m) {
    const std::string i = std::to_string(m);
    rb.convs1.push_back({expect_weight(get, p + "convs1." + i + ".weight", {ch, ch, kernel}),
                         expect_vector_f32(get, p + "convs1." + i + ".bias", ch)});
    rb.convs2.push_back({expect_weight(get, p + "convs2." + i + ".weight", {ch, ch, kernel}),
                         expect_vector_f32(get, p + "convs2." + i + ".bias", ch)});
    rb.alpha1.push_back(expect_vector_f32(get, p + "activations1." + i + ".alpha", ch));
    rb.alpha2.push_back(expect_vector_f32(get, p + "activations2." + i + ".alpha", ch));
  }
  return rb;
}

HiftGenerator::HiftGenerator(const WeightFn& get, uint64_t seed)
    : cfg_(HiftConfig::from_weights(get)), rng_(seed), seed_(seed) {
  const HiftConfig& c = cfg_;
  const int64_t C = c.cond_channels, B = c.base_channels, spec = c.n_fft + 2;
  for (int64_t i = 0; i < kCondnetLayers; ++i) {
    const std::string p = "f0_predictor.condnet." + std::to_string(2 * i) + ".";
    condnet_.push_back({expect_weight(get, p + "weight", {C, i == 0 ? c.in_channels : C, 3}),
                        expect_vector_f32(get, p + "bias", C)});
  }
  classifier_ = {expect_weight(get, "f0_predictor.classifier.weight", {1, C}),
                 expect_vector_f32(get, "f0_predictor.classifier.bias", 1)};
  l_linear_ = {expect_weight(get, "m_source.l_linear.weight", {1, c.nb_harmonics + 1}),
               expect_vector_f32(get, "m_source.l_linear.bias", 1)};
  conv_pre_ = {expect_weight(get, "conv_pre.weight", {B, c.in_channels, 7}),
               expect_vector_f32(get, "conv_pre.bias", B)};

  const size_t n_up = c.upsample_rates.size();
  // Source down-sampling rates: the cumulative upsampling still to come after stage i.
  source_down_rates_.assign(n_up, 1);
  for (size_t i = n_up - 1; i-- > 0;)
    source_down_rates_[i] = source_down_rates_[i + 1] * c.upsample_rates[i + 1];
  for (size_t i = 0; i < n_up; ++i) {
    const std::string s = std::to_string(i);
    const int64_t cin = B >> i, cout = B >> (i + 1), u = source_down_rates_[i];
    ups_.push_back({expect_weight(get, "ups." + s + ".weight", {cin, cout, c.upsample_kernels[i]}),
                    expect_vector_f32(get, "ups." + s + ".bias", cout)});
    source_downs_.push_back(
        {expect_weight(get, "source_downs." + s + ".weight", {cout, spec, u == 1 ? 1 : 2 * u}),
         expect_vector_f32(get, "source_downs." + s + ".bias", cout)});
    source_resblocks_.push_back(load_resblock(get, "source_resblocks." + s + ".", cout,
                                              c.source_resblock_kernels[i],
                                              c.source_resblock_dilations));
    for (size_t j = 0; j < c.resblock_kernels.size(); ++j)
      resblocks_.push_back(
          load_resblock(get, "resblocks." + std::to_string(i * c.resblock_kernels.size() + j) + ".",
                        cout, c.resblock_kernels[j], c.resblock_dilations));
  }
  const int64_t last = B >> n_up;
  conv_post_ = {expect_weight(get, "conv_post.weight", {spec, last, 7}),
                expect_vector_f32(get, "conv_post.bias", spec)};
}

void HiftGenerator::to(Device d) {
  auto move = [&](Conv& c) {
    c.w = on(c.w, d);
    c.b = on(c.b, d);
  };
  for (Conv& c : condnet_) move(c);
  for (Conv* c : {&classifier_, &l_linear_, &conv_pre_, &conv_post_}) move(*c);
  for (auto* v : {&ups_, &source_downs_})
    for (Conv& c : *v) move(c);
  for (auto* v : {&source_resblocks_, &resblocks_})
    for (ResBlock& rb : *v) {
      for (auto* cs : {&rb.convs1, &rb.convs2})
        for (Conv& c : *cs) move(c);
      for (auto* as : {&rb.alpha1, &rb.alpha2})
        for (Tensor& a : *as) a = on(a, d);
    }
}

Tensor HiftGenerator::run_resblock(const ResBlock& rb, const Tensor& input) const {
  Tensor x = input.clone();  // tensors share storage: never update the caller's input in place
  for (size_t m = 0; m < rb.dilations.size(); ++m) {
    Tensor xt = x.clone();
    ops::snake_(xt, rb.alpha1[m]);
    const int64_t p1 = same_pad(rb.kernel, rb.dilations[m]), p2 = same_pad(rb.kernel, 1);
    xt = ops::conv1d_ex(
        xt, rb.convs1[m].w, rb.convs1[m].b,
        {.pad_left = p1, .pad_right = p1, .dilation = rb.dilations[m], .tf32 = tf32()});
    ops::snake_(xt, rb.alpha2[m]);
    xt = ops::conv1d_ex(xt, rb.convs2[m].w, rb.convs2[m].b,
                        {.pad_left = p2, .pad_right = p2, .tf32 = tf32()});
    ops::add_(x, xt);
  }
  return x;
}

Tensor HiftGenerator::predict_f0(const Tensor& mel) const {
  if (mel.ndim() != 2 || mel.dim(0) != cfg_.in_channels || mel.dim(1) < 1)
    fail("HiFT: mel must be [{}, frames >= 1], got {}", cfg_.in_channels, mel.desc());
  Tensor x = on(mel, device()).reshape({1, mel.dim(0), mel.dim(1)});
  for (const Conv& cv : condnet_) {
    x = ops::conv1d_ex(x, cv.w, cv.b, {.pad_left = 1, .pad_right = 1});
    ops::elu_(x, kF0EluAlpha);
  }
  Tensor f0 = ops::linear(ops::transpose_last2(x), classifier_.w, classifier_.b);  // [1, F, 1]
  f0 = f0.reshape({mel.dim(1)});
  ops::abs_(f0);
  return f0;
}

Tensor HiftGenerator::source(const Tensor& f0, const HiftNoise& noise) const {
  ops::NsfOptions o{.upsample = cfg_.samples_per_frame(),
                    .sample_rate = cfg_.sample_rate,
                    .sine_amp = cfg_.nsf_alpha,
                    .noise_std = cfg_.nsf_sigma,
                    .voiced_threshold = cfg_.nsf_voiced_threshold};
  const Device d = device();
  Tensor sines = ops::nsf_sines(on(f0, d), cfg_.nb_harmonics + 1, o, on(noise.rand_ini, d),
                                on(noise.noise, d));
  Tensor s = ops::linear(sines, l_linear_.w, l_linear_.b);  // [480 F, 1]
  ops::tanh_(s);
  return s.reshape({s.dim(0)});
}

Tensor HiftGenerator::source_stft(const Tensor& s) const {
  Tensor spec = ops::stft_small(on(s, device()).reshape({1, s.numel()}), cfg_.n_fft, cfg_.hop);
  return spec.reshape({spec.dim(1), spec.dim(2)});
}

Tensor HiftGenerator::decode(const Tensor& mel, const Tensor& s_stft) const {
  const int64_t F = mel.ndim() == 2 ? mel.dim(1) : 0;
  if (mel.ndim() != 2 || mel.dim(0) != cfg_.in_channels || F < 1)
    fail("HiFT: mel must be [{}, frames >= 1], got {}", cfg_.in_channels, mel.desc());
  const int64_t frames = F * cfg_.samples_per_frame() / cfg_.hop + 1;
  if (s_stft.shape() != Shape{cfg_.n_fft + 2, frames})
    fail("HiFT: source STFT {} does not fit {} mel frames (expected [{}, {}])", s_stft.desc(), F,
         cfg_.n_fft + 2, frames);
  Tensor spec = on(s_stft, device()).reshape({1, s_stft.dim(0), s_stft.dim(1)});
  Tensor x = ops::conv1d_ex(on(mel, device()).reshape({1, mel.dim(0), F}), conv_pre_.w, conv_pre_.b,
                            {.pad_left = 3, .pad_right = 3, .tf32 = tf32()});
  const size_t n_up = ups_.size(), n_k = cfg_.resblock_kernels.size();
  for (size_t i = 0; i < n_up; ++i) {
    ops::leaky_relu_(x, cfg_.lrelu_slope);
    const int64_t u = cfg_.upsample_rates[i], k = cfg_.upsample_kernels[i];
    x = ops::conv_transpose1d(x, ups_[i].w, ups_[i].b, u, (k - u) / 2, tf32());
    if (i + 1 == n_up) x = ops::pad_time(x, 1, 0, ops::PadMode::Reflect);
    // Fuse the source at this rate.
    const int64_t d = source_down_rates_[i];
    ops::Conv1dOptions down{.stride = d,
                            .pad_left = d == 1 ? 0 : d / 2,
                            .pad_right = d == 1 ? 0 : d / 2,
                            .tf32 = tf32()};
    Tensor si = ops::conv1d_ex(spec, source_downs_[i].w, source_downs_[i].b, down);
    si = run_resblock(source_resblocks_[i], si);
    if (si.shape() != x.shape())
      fail("HiFT: stage {} source branch {} does not match the upsampled mel {}", i, si.desc(),
           x.desc());
    ops::add_(x, si);
    // Mean of the multi-receptive-field resblocks.
    Tensor xs = run_resblock(resblocks_[i * n_k], x);
    for (size_t j = 1; j < n_k; ++j) ops::add_(xs, run_resblock(resblocks_[i * n_k + j], x));
    ops::scale_(xs, 1.f / static_cast<float>(n_k));
    x = xs;
  }
  ops::leaky_relu_(x, kPostLreluSlope);
  x = ops::conv1d_ex(x, conv_post_.w, conv_post_.b,
                     {.pad_left = 3, .pad_right = 3, .tf32 = tf32()});
  return x.reshape({x.dim(1), x.dim(2)});
}

Tensor HiftGenerator::to_wav(const Tensor& conv_post) const {
  const int64_t bins = cfg_.n_fft / 2 + 1;
  if (conv_post.ndim() != 2 || conv_post.dim(0) != 2 * bins)
    fail("HiFT: decoder output must be [{}, frames], got {}", 2 * bins, conv_post.desc());
  const int64_t frames = conv_post.dim(1);
  const Tensor post = on(conv_post, device());
  Tensor mag = post.slice_rows(0, bins).clone();
  ops::exp_(mag);
  ops::clamp_(mag, -std::numeric_limits<float>::infinity(), kMaxMagnitude);
  Tensor phase = post.slice_rows(bins, 2 * bins).clone();
  ops::sin_(phase);  // the reference's "phase" is sin of the decoder output
  Tensor wav = ops::istft_small(mag.reshape({1, bins, frames}), phase.reshape({1, bins, frames}),
                                cfg_.n_fft, cfg_.hop);
  ops::clamp_(wav, -cfg_.audio_limit, cfg_.audio_limit);
  return wav.reshape({wav.dim(1)});
}

HiftNoise HiftGenerator::draw_noise(int64_t frames) {
  const int64_t dim = cfg_.nb_harmonics + 1, n = frames * cfg_.samples_per_frame() * dim;
  auto uniform53 = [&] { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; };
  std::vector<float> ini(static_cast<size_t>(dim));
  for (float& v : ini) v = static_cast<float>(rng_() >> 40) * 0x1.0p-24f;
  if (tf32() && device().is_cuda()) {
    // 480 F x 9 normals (2.2 M for 10 s) are drawn where they are used, not uploaded.
    Tensor noise =
        ops::counter_normal(seed_, counter_, {frames * cfg_.samples_per_frame(), dim}, device());
    counter_ += n;
    return {Tensor::from_vector(ini, {dim}), std::move(noise)};
  }
  std::vector<float> noise(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i += 2) {
    // Box-Muller: u1 in (0, 1] keeps the log finite.
    const double u1 = 1.0 - uniform53(), u2 = uniform53();
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * std::numbers::pi * u2;
    noise[i] = static_cast<float>(r * std::cos(a));
    if (i + 1 < n) noise[i + 1] = static_cast<float>(r * std::sin(a));
  }
  return {Tensor::from_vector(ini, {dim}),
          Tensor::from_vector(noise, {frames * cfg_.samples_per_frame(), dim})};
}

HiftOutput HiftGenerator::forward(const Tensor& mel, const HiftNoise* inject,
                                  const Tensor& cache_source) {
  HiftOutput out;
  out.f0 = predict_f0(mel);
  const HiftNoise drawn = inject ? HiftNoise{} : draw_noise(mel.dim(1));
  out.s = source(out.f0, inject ? *inject : drawn);
  if (cache_source.defined() && cache_source.numel() > 0) {
    if (cache_source.ndim() != 1 || cache_source.numel() > out.s.numel())
      fail("HiFT: cache_source {} must be [n] with n <= {} (the source length)",
           cache_source.desc(), out.s.numel());
    Tensor head = out.s.slice_rows(0, cache_source.numel());
    ops::copy_(head, on(cache_source, device()));
  }
  out.s_stft = source_stft(out.s);
  out.conv_post = decode(mel, out.s_stft);
  out.wav = to_wav(out.conv_post);
  return out;
}

void HiftStream::reset() { mel_cache_ = source_cache_ = speech_cache_ = Tensor(); }

Tensor HiftStream::push(const Tensor& mel_chunk, bool last_chunk, const HiftNoise* inject) {
  const int64_t spf = gen_.config().samples_per_frame();
  const Tensor chunk = on(mel_chunk, gen_.device());
  Tensor mel = mel_cache_.defined() ? ops::concat_time(mel_cache_, chunk) : chunk;
  HiftOutput out = gen_.forward(mel, inject, source_cache_);
  Tensor speech = out.wav;
  const int64_t n = speech.numel();
  if (speech_cache_.defined()) {
    // The cached tail is at most 8 frames and the new call starts with those same frames.
    Tensor head = speech.slice_rows(0, speech_cache_.numel());
    Tensor faded = ops::hamming_crossfade(head, speech_cache_);
    ops::copy_(head, faded);
  }
  const int64_t keep_frames = std::min(kMelCacheFrames, mel.dim(1));
  const int64_t keep = std::min(keep_frames * spf, n);
  mel_cache_ = ops::slice_time(mel, mel.dim(1) - keep_frames, mel.dim(1));
  source_cache_ = out.s.slice_rows(out.s.numel() - keep, out.s.numel()).clone();
  speech_cache_ = speech.slice_rows(n - keep, n).clone();
  if (last_chunk) {
    Tensor all = speech;
    reset();
    return all;
  }
  return speech.slice_rows(0, n - keep).clone();
}

}  // namespace stepaudio
