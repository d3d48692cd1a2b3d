// Token2wavStream (spec §7.8) against the offline path on the same codes with the same noise
// (the flow's frame-indexed table, the same NSF draws by absolute sample). Chunks see only the
// past, so the audio is close, not equal: the check is on loudness per 40 ms window, on the
// average spectrum, and on clicks (sample-to-sample jumps) at the chunk joins.
#include <complex>
#include <numbers>

#include "t2w_test_util.h"

namespace stepaudio {
namespace {

using namespace t2w_test;

std::vector<int32_t> long_codes(int repeats) {
  const std::vector<int32_t> g = golden_ids("flow/token");
  std::vector<int32_t> out;
  for (int r = 0; r < repeats; ++r) out.insert(out.end(), g.begin(), g.end());
  return out;
}

struct Streamed {
  std::vector<float> wav;
  std::vector<int64_t> joins;  // sample positions where one returned piece ends
  int64_t chunks = 0;
};

Streamed stream(Token2wav& t2w, const std::vector<int32_t>& codes, const Token2wavOptions& o,
                size_t step) {
  Token2wavStream s(t2w, golden_voice(), o);
  Streamed out;
  auto take = [&](const Tensor& piece) {
    const auto v = piece.to_f32_vector();
    if (!v.empty() && !out.wav.empty()) out.joins.push_back(static_cast<int64_t>(out.wav.size()));
    out.wav.insert(out.wav.end(), v.begin(), v.end());
  };
  for (size_t at = 0; at < codes.size(); at += step)
    take(s.push(std::span(codes).subspan(at, std::min(step, codes.size() - at))));
  take(s.finish());
  EXPECT_EQ(s.codes_pushed(), static_cast<int64_t>(codes.size()));
  EXPECT_EQ(s.samples_emitted(), static_cast<int64_t>(out.wav.size()));
  out.chunks = s.chunks();
  return out;
}

double rms(const std::vector<float>& x, size_t b, size_t e) {
  double s = 0;
  for (size_t i = b; i < e; ++i) s += double(x[i]) * x[i];
  return std::sqrt(s / static_cast<double>(std::max<size_t>(1, e - b)));
}

// Average power spectrum over 256-sample Hann windows (hop 128), in dB per bin.
std::vector<double> mean_spectrum_db(const std::vector<float>& x) {
  const int n = 256;
  std::vector<double> power(n / 2 + 1, 0.0);
  int windows = 0;
  for (size_t s = 0; s + n <= x.size(); s += n / 2, ++windows)
    for (int k = 0; k <= n / 2; ++k) {
      std::complex<double> acc = 0;
      for (int j = 0; j < n; ++j) {
        const double w = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * j / n);
        acc += w * x[s + j] * std::polar(1.0, -2 * std::numbers::pi * k * j / n);
      }
      power[k] += std::norm(acc);
    }
  for (double& p : power) p = 10 * std::log10(p / windows + 1e-20);
  return power;
}

TEST(Token2wavStream, CloseToOfflineWithoutClicks) {
  Token2wav& t2w = golden_t2w();
  const std::vector<int32_t> codes = long_codes(2);  // 74 codes: chunks of 25, 25, then 24
  const int64_t frames = 2 * static_cast<int64_t>(codes.size());
  Token2wavOptions o;
  o.seed = 5;
  o.hift_noise = t2w.hift().draw_noise(frames);  // one NSF table, indexed by absolute sample
  const std::vector<float> offline = t2w.synthesize(codes, golden_voice(), o).to_f32_vector();
  const Streamed st = stream(t2w, codes, o, 1);  // one code at a time, as from the LLM
  ASSERT_EQ(st.wav.size(), offline.size());
  EXPECT_EQ(st.chunks, 3);
  ASSERT_EQ(st.joins.size(), 2u);
  // The first piece is ready after 28 codes: 25 codes minus the 8 held-back frames.
  EXPECT_EQ(st.joins[0], 960 * 25 - 480 * 8);

  // Loudness per 40 ms window, where the offline audio is not near silence.
  const double total = rms(offline, 0, offline.size());
  double worst_ratio = 1, sum_log_ratio = 0;
  int windows = 0;
  for (size_t b = 0; b + 960 <= offline.size(); b += 960) {
    const double ro = rms(offline, b, b + 960), rs = rms(st.wav, b, b + 960);
    if (ro < 0.3 * total) continue;
    const double r = rs / ro;
    worst_ratio = std::max(worst_ratio, std::max(r, 1 / r));
    sum_log_ratio += std::fabs(std::log(r));
    ++windows;
  }
  ASSERT_GT(windows, 30);
  const double mean_log_ratio = sum_log_ratio / windows;
  // Whole-signal spectra, bins with energy (within 40 dB of the peak).
  const auto so = mean_spectrum_db(offline), ss = mean_spectrum_db(st.wav);
  const double peak = *std::max_element(so.begin(), so.end());
  double max_db = 0, mean_db = 0;
  int bins = 0;
  for (size_t k = 0; k < so.size(); ++k) {
    if (so[k] < peak - 40) continue;
    max_db = std::max(max_db, std::fabs(so[k] - ss[k]));
    mean_db += std::fabs(so[k] - ss[k]);
    ++bins;
  }
  mean_db /= std::max(bins, 1);
  // Clicks: the largest sample-to-sample jump near a join (the piece boundary and the end of the
  // 3840-sample cross-fade) against the largest jump anywhere else.
  std::vector<bool> near(st.wav.size(), false);
  for (int64_t j : st.joins)
    for (int64_t c : {j, j + 3840})
      for (int64_t i = c - 4; i <= c + 4; ++i)
        if (i >= 1 && i < static_cast<int64_t>(near.size())) near[static_cast<size_t>(i)] = true;
  double jump_join = 0, jump_else = 0;
  for (size_t i = 1; i < st.wav.size(); ++i) {
    const double d = std::fabs(double(st.wav[i]) - st.wav[i - 1]);
    (near[i] ? jump_join : jump_else) = std::max(near[i] ? jump_join : jump_else, d);
  }
  std::printf(
      "    streamed vs offline, %zu samples: rms %.3g; per-40ms-window loudness ratio worst %.3g, "
      "mean |log ratio| %.3g over %d windows; mean spectrum |dB diff| max %.2f, mean %.2f over "
      "%d bins; largest jump at joins %.3g, elsewhere %.3g\n",
      offline.size(), total, worst_ratio, mean_log_ratio, windows, max_db, mean_db, bins, jump_join,
      jump_else);
  // Observed on token2wav-a (74 codes, 3 chunks): worst window ratio 1.2, mean |log ratio|
  // 0.034; spectra within 0.89 dB (mean 0.22 dB); largest jump at joins 0.35 vs 0.66 elsewhere.
  EXPECT_LT(mean_log_ratio, 0.1);  // loudness follows the offline audio window by window
  EXPECT_LT(worst_ratio, 1.6);
  EXPECT_LT(mean_db, 0.75);  // the same spectral envelope
  EXPECT_LT(max_db, 3.0);
  EXPECT_LE(jump_join, jump_else);  // no clicks at chunk joins
}

TEST(Token2wavStream, ArrivalPatternDoesNotMatter) {
  Token2wav& t2w = golden_t2w();
  const std::vector<int32_t> codes = long_codes(1);  // 37 codes: chunks of 25 and 12
  Token2wavOptions o;
  o.seed = 3;
  const Streamed one = stream(t2w, codes, o, 1);
  const Streamed many = stream(t2w, codes, o, 7);
  const Streamed all = stream(t2w, codes, o, codes.size());
  EXPECT_EQ(one.wav, many.wav);
  EXPECT_EQ(one.wav, all.wav);
  EXPECT_EQ(one.wav.size(), 960 * codes.size());
}

// A stream for a voice seen before starts from a copy of the cached prompt setup: the audio must
// be what the first stream gave, whatever streams ran in between (they must not have written into
// the shared caches).
TEST(Token2wavStream, PromptSetupIsReusedPerVoice) {
  Token2wav& t2w = golden_t2w();
  const std::vector<int32_t> codes = long_codes(2);
  Token2wavOptions a, b;
  a.seed = 11;
  b.seed = 12;
  const Streamed first = stream(t2w, codes, a, 5);
  const Streamed other = stream(t2w, codes, b, 5);
  const Streamed again = stream(t2w, codes, a, 5);
  EXPECT_EQ(again.wav, first.wav);
  EXPECT_NE(other.wav, first.wav) << "another seed must give other noise";
  Token2wavOptions steps = a;
  steps.n_timesteps = 3;  // part of the key too
  EXPECT_NE(stream(t2w, codes, steps, 5).wav, first.wav);
}

TEST(Token2wavStream, ShortUtterancesAndErrors) {
  Token2wav& t2w = golden_t2w();
  // Fewer codes than one chunk: everything comes from finish().
  {
    Token2wavStream s(t2w, golden_voice());
    EXPECT_EQ(s.push(std::vector<int32_t>{5, 6, 7}).numel(), 0);
    EXPECT_EQ(s.finish().numel(), 960 * 3);
    EXPECT_THROW(s.finish(), Error);
    EXPECT_THROW(s.push(std::vector<int32_t>{1}), Error);
  }
  {
    Token2wavStream s(t2w, golden_voice());
    EXPECT_EQ(s.finish().numel(), 0);  // nothing pushed, nothing to say
  }
  {
    Token2wavStream s(t2w, golden_voice());
    EXPECT_THROW(s.push(std::vector<int32_t>{1, 6561}), Error);
  }
  FlowTrace trace;
  Token2wavOptions traced;
  traced.trace = &trace;
  EXPECT_THROW(Token2wavStream(t2w, golden_voice(), traced), Error);
  Voice bad = golden_voice();
  bad.prompt_mel = Tensor::zeros({2, 80}, DType::F32);
  EXPECT_THROW(Token2wavStream(t2w, bad), Error);
  // A voice with fewer prompt codes than the look-ahead still streams.
  Voice tiny = golden_voice();
  tiny.prompt_codes.resize(2);
  tiny.prompt_mel = golden("flow/prompt_feat").slice_rows(0, 4).clone();
  Token2wavStream s(t2w, tiny);
  std::vector<int32_t> codes = long_codes(1);
  const int64_t n = s.push(codes).numel() + s.finish().numel();
  EXPECT_EQ(n, 960 * static_cast<int64_t>(codes.size()));
}

}  // namespace
}  // namespace stepaudio
