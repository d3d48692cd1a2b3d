#include "audio/prompt_mel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>

#include "../test_paths.h"
#include "audio/load.h"
#include "audio/mel_filters.h"
#include "io/safetensors.h"
#include "torch_fixture.h"

namespace stepaudio {
namespace {

using ::testing::HasSubstr;

const SafetensorsFile& goldens() {
  static const SafetensorsFile f = SafetensorsFile::open(
      (testing_paths::golden() / "token2wav-a" / "goldens.safetensors").string());
  return f;
}

struct Diff {
  double abs = 0, rel = 0;
};
Diff compare(const float* a, const float* b, int64_t n) {
  Diff d;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - b[i]);
    d.abs = std::max(d.abs, e);
    d.rel = std::max(d.rel, e / std::max(1e-3, std::abs(static_cast<double>(b[i]))));
  }
  return d;
}
Diff compare(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return {1e30, 1e30};
  return compare(a.data<float>(), b.data<float>(), a.numel());
}

TEST(PromptMel, Audio24kMatchesGolden) {
  const std::vector<float> wav = load_audio_24k(testing_paths::audio("real_speech.aiff").string());
  const Tensor ref = goldens().get("prompt/audio_24k");
  ASSERT_EQ(static_cast<int64_t>(wav.size()), ref.numel());
  ASSERT_EQ(ref.numel(), 73501);
  const Diff d = compare(wav.data(), ref.data<float>(), ref.numel());
  std::printf("prompt audio_24k vs golden: max abs %.3g\n", d.abs);
  EXPECT_LE(d.abs, 1e-6);
}

TEST(PromptMel, FilterbankMatchesGolden) {
  const std::vector<float> bank = slaney_mel_filterbank(24000, 1920, 80, 0.0, 8000.0);
  const Tensor ref = goldens().get("prompt/mel_basis");
  ASSERT_EQ(ref.shape(), (Shape{80, 961}));
  ASSERT_EQ(static_cast<int64_t>(bank.size()), ref.numel());
  EXPECT_LE(compare(bank.data(), ref.data<float>(), ref.numel()).abs, 1e-7);
}

TEST(PromptMel, MelFromGoldenAudio) {
  const Tensor audio = goldens().get("prompt/audio_24k");
  const Tensor mel = flow_mel_24k({audio.data<float>(), static_cast<size_t>(audio.numel())});
  const Tensor ref = goldens().get("prompt/mel_raw");
  ASSERT_EQ(mel.shape(), (Shape{153, 80}));
  const Diff d = compare(mel, ref);
  std::printf("prompt mel_raw vs golden: max abs %.3g, max rel %.3g\n", d.abs, d.rel);
  EXPECT_LE(d.abs, 5e-4);
}

TEST(PromptMel, MelFromFileAndLengthFix) {
  const Tensor mel = prompt_mel_from_file(testing_paths::audio("real_speech.aiff").string());
  ASSERT_EQ(mel.shape(), (Shape{153, 80}));
  EXPECT_LE(compare(mel, goldens().get("prompt/mel_raw")).abs, 5e-4);
  // 77 prompt tokens: 154 frames, the last one repeated.
  const int64_t n_codes = goldens().get("prompt/speech_tokens").numel();
  ASSERT_EQ(n_codes, 77);
  const Tensor fixed = fix_prompt_mel_length(mel, n_codes);
  const Diff d = compare(fixed, goldens().get("prompt/mel"));
  std::printf("prompt mel (length-fixed) vs golden: max abs %.3g\n", d.abs);
  EXPECT_LE(d.abs, 5e-4);
  // The length fix itself is exact on the golden input.
  const Tensor exact = fix_prompt_mel_length(goldens().get("prompt/mel_raw"), n_codes);
  EXPECT_EQ(compare(exact, goldens().get("prompt/mel")).abs, 0.0);
}

TEST(PromptMel, LengthFixPadsAndCrops) {
  std::vector<float> v;
  for (int i = 0; i < 5 * 3; ++i) v.push_back(static_cast<float>(i));
  const Tensor mel = Tensor::from_vector(v, {5, 3});
  const Tensor crop = fix_prompt_mel_length(mel, 2);  // 4 frames
  EXPECT_EQ(crop.shape(), (Shape{4, 3}));
  EXPECT_THAT(crop.to_f32_vector(), ::testing::ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  const Tensor pad = fix_prompt_mel_length(mel, 4);  // 8 frames: the last row 3 more times
  EXPECT_EQ(pad.shape(), (Shape{8, 3}));
  const std::vector<float> p = pad.to_f32_vector();
  for (int r = 5; r < 8; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(p[static_cast<size_t>(r * 3 + c)], 12 + c);
  EXPECT_EQ(fix_prompt_mel_length(Tensor::from_vector({1, 2}, {1, 2}), 3).to_f32_vector(),
            (std::vector<float>{1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2}));
  EXPECT_THROW(fix_prompt_mel_length(mel, 0), Error);
  EXPECT_THROW(fix_prompt_mel_length(Tensor::from_vector(v, {15}), 2), Error);
  EXPECT_THROW(fix_prompt_mel_length(Tensor::zeros({0, 80}, DType::F32), 2), Error);
}

// Writes `frames` x `channels` float samples as a WAV at `rate`.
void write_wav(const std::filesystem::path& p, const std::vector<float>& interleaved, int channels,
               int rate) {
  SF_INFO info{};
  info.channels = channels;
  info.samplerate = rate;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(p.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr);
  sf_writef_float(f, interleaved.data(), static_cast<sf_count_t>(interleaved.size() / channels));
  sf_close(f);
}

TEST(PromptMel, StereoIsAveraged) {
  t2w_fixture::TempDir dir("t2w_prompt");
  const int rate = 16000, n = 8000;
  std::vector<float> st, mono;
  for (int i = 0; i < n; ++i) {
    const float l = 0.3f * std::sin(0.05f * i), r = 0.2f * std::sin(0.013f * i + 1.0f);
    st.push_back(l);
    st.push_back(r);
    mono.push_back((l + r) / 2);
  }
  write_wav(dir / "st.wav", st, 2, rate);
  write_wav(dir / "mono.wav", mono, 1, rate);
  const Tensor a = prompt_mel_from_file((dir / "st.wav").string());
  const Tensor b = prompt_mel_from_file((dir / "mono.wav").string());
  EXPECT_EQ(a.shape(), (Shape{25, 80}));  // 12000 samples at 24 kHz
  EXPECT_EQ(compare(a, b).abs, 0.0);
  // The mean differs from channel 0 alone.
  std::vector<float> left;
  for (int i = 0; i < n; ++i) left.push_back(st[static_cast<size_t>(2 * i)]);
  write_wav(dir / "left.wav", left, 1, rate);
  EXPECT_GT(compare(prompt_mel_from_file((dir / "left.wav").string()), b).abs, 0.1);
}

TEST(PromptMel, Errors) {
  std::vector<float> tiny(720, 0.1f);
  try {
    flow_mel_24k(tiny);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("720 samples"));
  }
  tiny.resize(721);
  EXPECT_EQ(flow_mel_24k(tiny).shape(), (Shape{1, 80}));
  std::vector<float> bad(2000, 0.0f);
  bad[7] = std::nanf("");
  EXPECT_THROW(flow_mel_24k(bad), Error);
  // Silence sits exactly at log(1e-5).
  const Tensor silent = flow_mel_24k(std::vector<float>(4800, 0.0f));
  EXPECT_EQ(silent.shape(), (Shape{10, 80}));
  for (float x : silent.to_f32_vector()) EXPECT_EQ(x, std::log(1e-5f));
  try {
    prompt_mel_from_file("/nonexistent/p.wav");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/p.wav"));
  }
}

}  // namespace
}  // namespace stepaudio
