// resample() against torchaudio.transforms.Resample outputs (tests/data/resample, written by
// scripts/make_resample_fixtures.py) and against a dense, straight-from-the-formula reference for
// rates the fixtures do not cover.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <random>

#include "../test_paths.h"
#include "audio/load.h"
#include "core/error.h"
#include "core/parallel.h"
#include "io/safetensors.h"

using namespace stepaudio;
namespace fs = std::filesystem;

namespace {

constexpr double kTol = 1e-5;  // max abs error allowed against torchaudio

fs::path fixture_dir() { return testing_paths::source() / "tests/data/resample"; }

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double{a[i]} - b[i]));
  return m;
}

// torchaudio's kernel tap, written independently of src/audio/resample.cpp: the dense
// [new, 2*width + orig] row, float64 math, float32 result.
struct Dense {
  int64_t orig, next, width;
  double base;
  float tap(int64_t j, int64_t k) const {
    const float jf = static_cast<float>(-j) / static_cast<float>(next);
    double t = (double{jf} + static_cast<double>(k - width) / static_cast<double>(orig)) * base;
    t = std::min(6.0, std::max(-6.0, t));
    double w = std::cos(t * std::numbers::pi / 6 / 2);
    w *= w;
    t *= std::numbers::pi;
    const double s = t == 0 ? 1.0 : std::sin(t) / t;
    return static_cast<float>(s * (w * (base / static_cast<double>(orig))));
  }
};

Dense dense_for(int from, int to) {
  const int64_t g = std::gcd(from, to);
  Dense d{from / g, to / g, 0, 0};
  d.base = static_cast<double>(std::min(d.orig, d.next)) * 0.99;
  d.width = static_cast<int64_t>(std::ceil(6.0 * static_cast<double>(d.orig) / d.base));
  return d;
}

// Output sample n of torchaudio's conv1d over the zero-padded input, using every tap of the row.
double dense_output(const Dense& d, const std::vector<float>& x, int64_t n) {
  const int64_t i = n / d.next, j = n % d.next;
  // Every tap of the row that lands on the input (the rest multiply padding zeros).
  const int64_t len = static_cast<int64_t>(x.size());
  const int64_t k0 = std::max<int64_t>(0, d.width - i * d.orig);
  const int64_t k1 = std::min<int64_t>(2 * d.width + d.orig, d.width - i * d.orig + len);
  double acc = 0;
  for (int64_t k = k0; k < k1; ++k)
    acc += double{x[static_cast<size_t>(i * d.orig + k - d.width)]} * d.tap(j, k);
  return acc;
}

std::vector<float> noise(size_t n, uint32_t seed, float amp = 0.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

}  // namespace

TEST(Resample, MatchesTorchaudioFixtures) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fixture_dir()))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 14u) << "fixtures missing in " << fixture_dir()
                               << "; run /usr/bin/python3 scripts/make_resample_fixtures.py";
  double worst = 0;
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.filename().string());
    const SafetensorsFile f = SafetensorsFile::open(p.string());
    const int from = std::stoi(f.metadata().at("from_rate"));
    const int to = std::stoi(f.metadata().at("to_rate"));
    const std::string source = f.metadata().at("source");
    const std::vector<float> want = f.get("output").to_f32_vector();
    std::vector<float> got;
    if (source == "synthetic") {
      got = resample(f.get("input").to_f32_vector(), from, to);
    } else {
      // The official front end: decode, channel 0, resample to 16 kHz, in one call.
      ASSERT_EQ(to, 16000);
      got = load_audio_16k(testing_paths::audio(source).string());
    }
    ASSERT_EQ(got.size(), want.size());
    const double err = max_abs_diff(got, want);
    EXPECT_LE(err, kTol);
    worst = std::max(worst, err);
    std::printf("  %-34s %6d -> %5d  %6zu samples  max abs err %.3g\n", p.filename().c_str(), from,
                to, got.size(), err);
  }
  RecordProperty("worst_max_abs_err", std::to_string(worst));
}

TEST(Resample, DecodedFileInputMatchesTorchaudioLoad) {
  // The file fixtures store every 37th sample of torchaudio.load(...)[0] and float64 sums of all of
  // it, so the decoder is checked against the official loader too.
  for (const char* name : {"file_stereo_44k.safetensors", "file_real_speech.safetensors"}) {
    SCOPED_TRACE(name);
    const SafetensorsFile f = SafetensorsFile::open((fixture_dir() / name).string());
    const PcmAudio a = decode_audio(testing_paths::audio(f.metadata().at("source")).string());
    EXPECT_EQ(a.sample_rate, std::stoi(f.metadata().at("from_rate")));
    ASSERT_EQ(static_cast<int64_t>(a.samples.size()), std::stoll(f.metadata().at("input_len")));
    const std::vector<float> every37 = f.get("input_every_37th").to_f32_vector();
    ASSERT_EQ(every37.size(), (a.samples.size() + 36) / 37);
    for (size_t i = 0; i < every37.size(); ++i) ASSERT_EQ(a.samples[37 * i], every37[i]) << i;
    double sum = 0, sumsq = 0;
    for (float x : a.samples) sum += x, sumsq += double{x} * x;
    EXPECT_DOUBLE_EQ(sum, std::stod(f.metadata().at("input_sum")));
    EXPECT_DOUBLE_EQ(sumsq, std::stod(f.metadata().at("input_sumsq")));
  }
}

TEST(Resample, MatchesToken2wavGoldens) {
  // The token2wav golden set resampled real_speech.aiff with torchaudio to 16 and 24 kHz.
  const SafetensorsFile g =
      SafetensorsFile::open((testing_paths::golden() / "token2wav-a/goldens.safetensors").string());
  const PcmAudio a = decode_audio(testing_paths::audio("real_speech.aiff").string());
  for (const auto& [name, rate] :
       {std::pair{"prompt/audio_16k", 16000}, {"prompt/audio_24k", 24000}}) {
    SCOPED_TRACE(name);
    const std::vector<float> want = g.get(name).to_f32_vector();
    const std::vector<float> got = resample(a.samples, 22050, rate);
    ASSERT_EQ(got.size(), want.size());
    const double err = max_abs_diff(got, want);
    EXPECT_LE(err, kTol);
    std::printf("  %s max abs err %.3g\n", name, err);
  }
}

TEST(Resample, MatchesDenseReferenceForUnusualRates) {
  // Large reduced rates (gcd 1) where torchaudio's dense kernel would be gigabytes; the sparse
  // phases must still give the same sums. Checks the first, last and some middle outputs.
  const std::pair<int, int> rates[] = {{44101, 16000},  {16000, 44101}, {7919, 16000},
                                       {192000, 16000}, {16000, 1000},  {1, 16000},
                                       {999999, 16000}, {100, 3}};
  for (const auto& [from, to] : rates) {
    SCOPED_TRACE(std::to_string(from) + " -> " + std::to_string(to));
    const std::vector<float> x = noise(static_cast<size_t>(std::min(from, 3000) + 17), 7);
    const std::vector<float> y = resample(x, from, to);
    const int64_t want_len =
        (static_cast<int64_t>(to) * static_cast<int64_t>(x.size()) + from - 1) / from;
    ASSERT_EQ(static_cast<int64_t>(y.size()), want_len);
    const Dense d = dense_for(from, to);
    std::vector<int64_t> check;
    for (int64_t n = 0; n < std::min<int64_t>(want_len, 40); ++n) check.push_back(n);
    for (int64_t n = std::max<int64_t>(0, want_len - 40); n < want_len; ++n) check.push_back(n);
    for (int64_t n = 0; n < want_len; n += std::max<int64_t>(1, want_len / 50)) check.push_back(n);
    double err = 0;
    for (int64_t n : check) {
      err = std::max(err, std::abs(dense_output(d, x, n) - y[static_cast<size_t>(n)]));
    }
    EXPECT_LE(err, 1e-6);
  }
}

TEST(Resample, LengthsAndEdgeCases) {
  EXPECT_TRUE(resample(std::vector<float>{}, 44100, 16000).empty());
  const std::vector<float> x = noise(1000, 3);
  EXPECT_EQ(resample(x, 16000, 16000), x);
  std::mt19937 rng(11);
  const int common[] = {8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000};
  for (int trial = 0; trial < 40; ++trial) {
    const int from = common[rng() % 9], to = common[rng() % 9];
    const size_t n = rng() % 5000;
    const std::vector<float> y = resample(std::vector<float>(n, 0.25f), from, to);
    EXPECT_EQ(y.size(),
              static_cast<size_t>((int64_t{to} * static_cast<int64_t>(n) + from - 1) / from))
        << from << " -> " << to << ", " << n;
  }
  // A constant stays constant away from the zero-padded ends (the filter passes DC with gain 1).
  const std::vector<float> dc = resample(std::vector<float>(44100, 0.5f), 44100, 16000);
  for (size_t i = 100; i + 100 < dc.size(); ++i) ASSERT_NEAR(dc[i], 0.5f, 2e-3) << i;
  // A 1 kHz tone keeps its amplitude and phase.
  std::vector<float> tone(48000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.5f * std::sin(2 * M_PI * 1000 * i / 48000.0);
  const std::vector<float> t16 = resample(tone, 48000, 16000);
  for (size_t i = 200; i + 200 < t16.size(); ++i)
    ASSERT_NEAR(t16[i], 0.5 * std::sin(2 * M_PI * 1000 * i / 16000.0), 2e-3) << i;
}

TEST(Resample, RejectsBadArguments) {
  const std::vector<float> x(10, 0.1f);
  for (const auto& [from, to] :
       {std::pair{0, 16000}, {16000, 0}, {-8000, 16000}, {2'000'000, 16000}}) {
    try {
      resample(x, from, to);
      ADD_FAILURE() << from << " -> " << to;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("rates must be in"), std::string::npos) << e.what();
    }
  }
  std::vector<float> bad = x;
  bad[4] = std::numeric_limits<float>::infinity();
  try {
    resample(bad, 22050, 16000);
    ADD_FAILURE() << "no error for Inf input";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 4 of 10 is inf"), std::string::npos) << e.what();
  }
}

TEST(Resample, ThreadCountDoesNotChangeTheResult) {
  const std::vector<float> x = noise(200000, 5);
  const int saved = num_threads();
  set_num_threads(1);
  const std::vector<float> one = resample(x, 44100, 16000);
  set_num_threads(std::max(2, saved));
  const std::vector<float> many = resample(x, 44100, 16000);
  set_num_threads(saved);
  EXPECT_EQ(one, many);
}

TEST(Resample, Speed) {
  // 30 s of 44.1 kHz audio, the longest clip the model takes in one piece. Reported, and bounded
  // loosely so a pathological slowdown (e.g. a dense kernel) fails.
  const std::vector<float> x = noise(44100 * 30, 9);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> y = resample(x, 44100, 16000);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(y.size(), 480000u);
  std::printf("  44100 -> 16000, 30 s: %.1f ms on %d threads\n", ms, num_threads());
  EXPECT_LT(ms, 2000.0);
}
