// HiFT vocoder (CosyVoice2's HiFTGenerator as Step-Audio 2's token2wav uses it): mel [80, F] at
// 50 Hz -> 24 kHz waveform [480 F]. An f0 predictor (convs + ELU + linear), an NSF harmonic source
// (SineGen2) turned into an STFT, and an upsampling decoder (transposed convs, Snake resblocks)
// whose output is a magnitude / phase spectrogram for a 16-point iSTFT. Spec §7.6.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "model/dit.h"
#include "model/weights.h"

namespace stepaudio {

struct HiftConfig {
  int64_t in_channels = 80;
  int64_t base_channels = 512;  // from conv_pre
  int64_t cond_channels = 512;  // f0 predictor width, from condnet.0
  int64_t nb_harmonics = 8;
  float sample_rate = 24000.f;
  float nsf_alpha = 0.1f, nsf_sigma = 0.003f, nsf_voiced_threshold = 10.f;
  std::vector<int64_t> upsample_rates{8, 5, 3}, upsample_kernels{16, 11, 7};
  int64_t n_fft = 16, hop = 4;
  std::vector<int64_t> resblock_kernels{3, 7, 11}, resblock_dilations{1, 3, 5};
  std::vector<int64_t> source_resblock_kernels{7, 7, 11}, source_resblock_dilations{1, 3, 5};
  float lrelu_slope = 0.1f, audio_limit = 0.99f;

  // Samples per mel frame: prod(upsample_rates) * hop (480).
  int64_t samples_per_frame() const;
  // The defaults, with the widths read from the weights' shapes.
  static HiftConfig from_weights(const WeightFn& get);
};

// The NSF source's random draws for one call: rand_ini [harmonics+1] (uniform [0, 1) initial
// phases) and noise [480 F, harmonics+1] (standard normal). An undefined tensor means zeros, so a
// default HiftNoise is the noiseless source.
struct HiftNoise {
  Tensor rand_ini;
  Tensor noise;
};

struct HiftOutput {
  Tensor wav;        // F32 [480 F], clamped to ±audio_limit
  Tensor f0;         // F32 [F] Hz
  Tensor s;          // F32 [480 F] source excitation (after cache_source)
  Tensor s_stft;     // F32 [n_fft + 2, 120 F + 1] real rows, then imaginary rows
  Tensor conv_post;  // F32 [n_fft + 2, 120 F + 1] decoder output before exp / sin / iSTFT
};

class HiftGenerator {
 public:
  // Weights as T2wWeights provides them (weight norm folded, "generator." stripped). `seed` seeds
  // the generator of the NSF draws used when forward() is given no noise.
  explicit HiftGenerator(const WeightFn& get, uint64_t seed = 0);

  const HiftConfig& config() const { return cfg_; }
  // Moves the weights to `d`; every call then runs there (inputs, injected draws and the cached
  // source are moved to it; results stay on it).
  void to(Device d);
  Device device() const { return conv_pre_.w.device(); }

  // mel F32 [80, F] (F >= 1) -> waveform and intermediates. With `inject` the NSF draws are taken
  // from it (undefined members: zeros); otherwise they are drawn from this object's generator.
  // A non-empty cache_source [n <= 480 F] overwrites the first n samples of the source
  // (streaming: the previous chunk's source tail).
  HiftOutput forward(const Tensor& mel, const HiftNoise* inject = nullptr,
                     const Tensor& cache_source = {});

  // Random draws for F frames from this object's generator (std::mt19937_64; uniforms are the
  // top 24 bits / 2^24, normals are Box-Muller pairs from two 53-bit uniforms). In the fast mode
  // on the GPU the normals are drawn there instead (ops::counter_normal keyed by the seed, the
  // counter continuing from the previous draw); rand_ini still comes from the mt19937_64.
  HiftNoise draw_noise(int64_t frames);
  void reseed(uint64_t seed) {
    rng_.seed(seed);
    seed_ = seed;
    counter_ = 0;
  }

  // The GPU numerics (T2wPrecision, default Fp32). Fast: the decoder's convolutions in TF32 and
  // the NSF noise drawn on the GPU. The f0 predictor and the source stay exact in both modes: the
  // source integrates f0 into a phase over the whole utterance, so a relative f0 error of 1e-3
  // would become a phase drift of whole radians within seconds.
  void set_precision(T2wPrecision p) { precision_ = p; }
  T2wPrecision precision() const { return precision_; }

  // The stages on their own (tests feed each the reference input of that stage).
  Tensor predict_f0(const Tensor& mel) const;                     // [80, F] -> [F]
  Tensor source(const Tensor& f0, const HiftNoise& noise) const;  // [F] -> [480 F]
  Tensor source_stft(const Tensor& s) const;                      // [N] -> [18, N/4 + 1]
  Tensor decode(const Tensor& mel, const Tensor& s_stft) const;   // -> conv_post [18, 120F+1]
  Tensor to_wav(const Tensor& conv_post) const;                   // -> [480 F]

 private:
  struct Conv {
    Tensor w, b;
  };
  struct ResBlock {
    int64_t kernel = 0;
    std::vector<int64_t> dilations;
    std::vector<Conv> convs1, convs2;
    std::vector<Tensor> alpha1, alpha2;
  };
  static ResBlock load_resblock(const WeightFn& get, const std::string& prefix, int64_t channels,
                                int64_t kernel, const std::vector<int64_t>& dilations);
  Tensor run_resblock(const ResBlock& rb, const Tensor& input) const;

  HiftConfig cfg_;
  std::vector<Conv> condnet_;
  Conv classifier_, l_linear_, conv_pre_, conv_post_;
  std::vector<Conv> ups_, source_downs_;
  std::vector<int64_t> source_down_rates_;
  std::vector<ResBlock> source_resblocks_, resblocks_;
  bool tf32() const { return precision_ == T2wPrecision::Fast; }

  std::mt19937_64 rng_;
  uint64_t seed_ = 0;
  int64_t counter_ = 0;  // the fast mode's next counter_normal draw
  T2wPrecision precision_ = T2wPrecision::Fp32;
};

// The vocoder side of streaming token2wav (spec §7.8): each call vocodes the last 8 mel frames of
// the previous call plus the new chunk, with the previous source tail (3840 samples) written over
// the start of the source; the first 3840 output samples are cross-faded (Hamming, 7680 points)
// with the tail held back last time, and the last 3840 samples are held back unless this is the
// last chunk. Concatenating the returned pieces gives 480 samples per mel frame pushed.
class HiftStream {
 public:
  static constexpr int64_t kMelCacheFrames = 8;

  explicit HiftStream(HiftGenerator& gen) : gen_(gen) {}

  // mel_chunk F32 [80, C]; returns the samples ready to play. `inject` as in
  // HiftGenerator::forward, sized for this call's frames (cached + new).
  Tensor push(const Tensor& mel_chunk, bool last_chunk, const HiftNoise* inject = nullptr);
  // Frames the next push() will vocode before its new chunk (the cached mel).
  int64_t cached_frames() const { return mel_cache_.defined() ? mel_cache_.dim(1) : 0; }
  void reset();

 private:
  HiftGenerator& gen_;
  Tensor mel_cache_, source_cache_, speech_cache_;
};

}  // namespace stepaudio
