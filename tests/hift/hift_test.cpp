// HiFT vocoder against the token2wav-a goldens (golden README §8.3 case 3): every stage fed the
// reference input of that stage, then the whole forward, with the recorded NSF draws injected
// (and with every draw zero). Tolerances: README §8.7, vocoder row "PyTorch 1.13 CPU vs these
// goldens" with a margin, i.e. the suggested checks (f0 2e-3, s 1e-3, s_stft / conv_post 3e-3,
// wav 2e-3).
#include "model/hift.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../test_paths.h"
#include "io/safetensors.h"
#include "model/t2w_weights.h"

namespace stepaudio {
namespace {

std::string t2w(const std::string& name) {
  return (testing_paths::golden() / "token2wav-a" / name).string();
}

const T2wWeights& weights() {
  static const T2wWeights w = T2wWeights::load(t2w("hift.pt"));
  return w;
}

const SafetensorsFile& goldens() {
  static const SafetensorsFile f = SafetensorsFile::open(t2w("goldens.safetensors"));
  return f;
}

Tensor golden(const std::string& name) { return goldens().get(name); }

struct Diff {
  double max_abs = 0, max_ref = 0;
};

// Max |a - b| (shapes must match), printed so the observed errors are on record.
Diff compare(const std::string& what, const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape()) << what;
  Diff d;
  if (got.shape() != want.shape()) return d;
  const auto a = got.to_f32_vector(), b = want.to_f32_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    d.max_abs = std::max(d.max_abs, std::fabs(double(a[i]) - b[i]));
    d.max_ref = std::max(d.max_ref, std::fabs(double(b[i])));
  }
  std::printf("  %-28s max|diff| %.3g (max|ref| %.3g)\n", what.c_str(), d.max_abs, d.max_ref);
  return d;
}

HiftNoise golden_noise(const std::string& c) {
  return {golden(c + "/rand_ini"), golden(c + "/noise")};
}

class HiftGolden : public ::testing::TestWithParam<std::string> {
 protected:
  std::string c = GetParam();
  HiftGenerator gen{weights().fn()};
  Tensor mel = golden(c + "/mel");
  int64_t frames = mel.dim(1);
};

TEST_P(HiftGolden, Config) {
  const HiftConfig& cfg = gen.config();
  EXPECT_EQ(cfg.base_channels, 64);
  EXPECT_EQ(cfg.cond_channels, 64);
  EXPECT_EQ(cfg.in_channels, 80);
  EXPECT_EQ(cfg.samples_per_frame(), 480);
}

TEST_P(HiftGolden, F0FromGoldenMel) {
  Tensor f0 = gen.predict_f0(mel);
  EXPECT_LE(compare(c + "/f0", f0, golden(c + "/f0")).max_abs, 2e-3);
  // Voicing (f0 > 10 Hz) must agree frame by frame.
  const auto a = f0.to_f32_vector(), b = golden(c + "/f0").to_f32_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i] > 10.f, b[i] > 10.f) << "frame " << i;
}

TEST_P(HiftGolden, SourceFromGoldenF0) {
  Tensor f0 = golden(c + "/f0");
  EXPECT_LE(compare(c + "/s", gen.source(f0, golden_noise(c)), golden(c + "/s")).max_abs, 1e-3);
  EXPECT_LE(compare(c + "/s_norand", gen.source(f0, {}), golden(c + "/s_norand")).max_abs, 1e-3);
}

TEST_P(HiftGolden, RandIniHasNoEffect) {
  // README §8.5: the down-sampling never reads sample 0, so the initial phases are lost.
  Tensor f0 = golden(c + "/f0");
  HiftNoise with_ini{golden(c + "/rand_ini"), {}};
  compare(c + "/s rand_ini vs none", gen.source(f0, with_ini), gen.source(f0, {}));
  EXPECT_EQ(gen.source(f0, with_ini).to_f32_vector(), gen.source(f0, {}).to_f32_vector());
}

TEST_P(HiftGolden, StftFromGoldenSource) {
  EXPECT_LE(
      compare(c + "/s_stft", gen.source_stft(golden(c + "/s")), golden(c + "/s_stft")).max_abs,
      3e-3);
}

TEST_P(HiftGolden, ForwardWithInjectedNoise) {
  HiftNoise noise = golden_noise(c);
  HiftOutput out = gen.forward(mel, &noise);
  ASSERT_EQ(out.wav.shape(), (Shape{480 * frames}));
  EXPECT_LE(compare(c + "/f0 (forward)", out.f0, golden(c + "/f0")).max_abs, 2e-3);
  EXPECT_LE(compare(c + "/s (forward)", out.s, golden(c + "/s")).max_abs, 1e-3);
  EXPECT_LE(compare(c + "/s_stft (forward)", out.s_stft, golden(c + "/s_stft")).max_abs, 3e-3);
  if (goldens().has(c + "/conv_post")) {
    EXPECT_LE(compare(c + "/conv_post (forward)", out.conv_post, golden(c + "/conv_post")).max_abs,
              3e-3);
  }
  EXPECT_LE(compare(c + "/wav (forward)", out.wav, golden(c + "/wav")).max_abs, 2e-3);
}

TEST_P(HiftGolden, ForwardWithoutNoise) {
  HiftNoise zeros;
  HiftOutput out = gen.forward(mel, &zeros);
  EXPECT_LE(compare(c + "/s_norand (forward)", out.s, golden(c + "/s_norand")).max_abs, 1e-3);
  EXPECT_LE(compare(c + "/wav_norand (forward)", out.wav, golden(c + "/wav_norand")).max_abs, 2e-3);
}

INSTANTIATE_TEST_SUITE_P(Cases, HiftGolden, ::testing::Values("hift_gen", "hift_prompt"),
                         [](const auto& info) { return info.param; });

// Decoder and iSTFT on their own, fed the golden s_stft / conv_post (only hift_gen records
// conv_post).
TEST(HiftGoldenStages, DecoderFromGoldenStft) {
  HiftGenerator gen(weights().fn());
  Tensor post = gen.decode(golden("hift_gen/mel"), golden("hift_gen/s_stft"));
  EXPECT_LE(compare("hift_gen/conv_post", post, golden("hift_gen/conv_post")).max_abs, 3e-3);
}

TEST(HiftGoldenStages, WavFromGoldenConvPost) {
  HiftGenerator gen(weights().fn());
  Tensor wav = gen.to_wav(golden("hift_gen/conv_post"));
  EXPECT_LE(compare("hift_gen/wav from conv_post", wav, golden("hift_gen/wav")).max_abs, 2e-3);
}

}  // namespace
}  // namespace stepaudio
