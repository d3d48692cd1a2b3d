#include <gtest/gtest.h>

#include <sndfile.h>
#include <zlib.h>

#include <cmath>
#include <complex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <random>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "audio/mel.h"
#include "audio/mel_filters.h"
#include "backend/cpu/mel_cpu.h"
#include "core/parallel.h"
#include "io/safetensors.h"

using namespace stepaudio;
namespace fs = std::filesystem;

namespace {

// 16-bit PCM WAV -> float (int16 / 32768), channel 0, via libsndfile.
std::vector<float> read_wav(const fs::path& p) {
  SF_INFO info{};
  SNDFILE* f = sf_open(p.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error("cannot open " + p.string() + ": " + sf_strerror(nullptr));
  std::vector<float> inter(static_cast<size_t>(info.frames * info.channels));
  const sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
  sf_close(f);
  if (got != info.frames) throw std::runtime_error("short read of " + p.string());
  if (info.samplerate != 16000) throw std::runtime_error(p.string() + " is not 16 kHz");
  std::vector<float> out(static_cast<size_t>(info.frames));
  for (sf_count_t i = 0; i < info.frames; ++i)
    out[static_cast<size_t>(i)] = inter[static_cast<size_t>(i * info.channels)];
  return out;
}

// Minimal .npz reader: zip central directory + raw deflate (zlib) + a little-endian float32
// C-order .npy. Enough for numpy.savez_compressed output.
std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> read_npz(
    const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  std::string z((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto u16 = [&](size_t o) {
    return uint32_t(uint8_t(z.at(o))) | uint32_t(uint8_t(z.at(o + 1))) << 8;
  };
  auto u32 = [&](size_t o) { return u16(o) | u16(o + 2) << 16; };
  size_t eocd = z.rfind(std::string("PK\x05\x06", 4));
  if (eocd == std::string::npos) throw std::runtime_error("no zip directory in " + p.string());
  const uint32_t entries = u16(eocd + 10);
  size_t cd = u32(eocd + 16);
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> out;
  for (uint32_t e = 0; e < entries; ++e) {
    if (u32(cd) != 0x02014b50) throw std::runtime_error("bad zip central header");
    const uint32_t method = u16(cd + 10), csize = u32(cd + 20), usize = u32(cd + 24);
    const uint32_t nlen = u16(cd + 28), xlen = u16(cd + 30), clen = u16(cd + 32);
    const uint32_t local = u32(cd + 42);
    std::string name = z.substr(cd + 46, nlen);
    cd += 46 + nlen + xlen + clen;
    const size_t data = local + 30 + u16(local + 26) + u16(local + 28);
    std::string raw(usize, '\0');
    if (method == 0) {
      raw = z.substr(data, usize);
    } else if (method == 8) {
      z_stream s{};
      if (inflateInit2(&s, -15) != Z_OK) throw std::runtime_error("inflateInit2");
      s.next_in = reinterpret_cast<Bytef*>(z.data() + data);
      s.avail_in = csize;
      s.next_out = reinterpret_cast<Bytef*>(raw.data());
      s.avail_out = usize;
      const int rc = inflate(&s, Z_FINISH);
      inflateEnd(&s);
      if (rc != Z_STREAM_END) throw std::runtime_error("inflate failed for " + name);
    } else {
      throw std::runtime_error("unsupported zip method for " + name);
    }
    if (raw.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error(name + " is not .npy");
    const size_t hlen = uint8_t(raw[8]) | size_t(uint8_t(raw[9])) << 8;
    const std::string header = raw.substr(10, hlen);
    if (header.find("'<f4'") == std::string::npos || header.find("False") == std::string::npos)
      throw std::runtime_error(name + ": expected C-order <f4, header " + header);
    std::vector<int64_t> shape;
    const size_t lp = header.find('(', header.find("shape"));
    for (size_t i = lp + 1; header[i] != ')';) {
      if (std::isdigit(static_cast<unsigned char>(header[i]))) {
        size_t used = 0;
        shape.push_back(std::stoll(header.substr(i), &used));
        i += used;
      } else {
        ++i;
      }
    }
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    std::memcpy(v.data(), raw.data() + 10 + hlen, v.size() * 4);
    out[name.substr(0, name.size() - 4)] = {shape, v};
  }
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Independent float64 front end: explicit padded signal (zeros then numpy-style reflect), naive
// DFT, float64 mel bank, the same log/floor/scale.
std::vector<float> reference_log_mel(const std::vector<float>& x) {
  std::vector<double> sig(x.begin(), x.end());
  sig.resize(sig.size() + 479, 0.0);
  const int64_t L = static_cast<int64_t>(sig.size());
  std::vector<double> padded;
  for (int64_t i = 200; i >= 1; --i) padded.push_back(sig[static_cast<size_t>(i)]);
  padded.insert(padded.end(), sig.begin(), sig.end());
  for (int64_t i = L - 2; i >= L - 201; --i) padded.push_back(sig[static_cast<size_t>(i)]);
  const int64_t T = L / 160;
  const auto& fb = mel_filters_128();
  std::vector<double> mel(static_cast<size_t>(128 * T));
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> pw(201);
    for (int k = 0; k < 201; ++k) {
      std::complex<double> acc = 0;
      for (int n = 0; n < 400; ++n) {
        const double w = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * n / 400);
        acc += padded[static_cast<size_t>(t * 160 + n)] * w *
               std::polar(1.0, -2 * std::numbers::pi * ((k * n) % 400) / 400);
      }
      pw[static_cast<size_t>(k)] = std::norm(acc);
    }
    for (int m = 0; m < 128; ++m) {
      double s = 0;
      for (int k = 0; k < 201; ++k)
        s += fb[static_cast<size_t>(m * 201 + k)] * pw[static_cast<size_t>(k)];
      mel[static_cast<size_t>(m * T + t)] = std::log10(std::max(s, 1e-10));
    }
  }
  const double mx = *std::max_element(mel.begin(), mel.end());
  std::vector<float> out(mel.size());
  for (size_t i = 0; i < mel.size(); ++i)
    out[i] = static_cast<float>((std::max(mel[i], mx - 8) + 4) / 4);
  return out;
}

std::vector<float> noise(size_t n, uint32_t seed, float amp = 0.3f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, amp);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace

// ------------------------------------------------------------------ counts and chunking

TEST(MelCounts, FramesFormula) {
  EXPECT_EQ(mel_frames(0), 2);
  EXPECT_EQ(mel_frames(800), 7);
  EXPECT_EQ(mel_frames(47818), 301);
  EXPECT_EQ(mel_frames(96037), 603);
  EXPECT_EQ(mel_frames(400000), 2502);
  for (int64_t n = 0; n < 5000; n += 160) EXPECT_EQ(mel_frames(n), n / 160 + 2) << n;
  EXPECT_THROW(mel_frames(-1), Error);
}

TEST(MelCounts, SpecTableExamples) {
  // spec §2.1 "N samples -> T -> n" and the golden manifest's chunks.
  const std::vector<std::array<int64_t, 3>> table = {
      {8000, 52, 6},       {16000, 102, 13},    {32000, 202, 25},    {80000, 502, 63},
      {160000, 1002, 125}, {320000, 2002, 250}, {400000, 2502, 313}, {479680, 3000, 375},
      {47818, 301, 38},    {49001, 309, 39},    {96037, 603, 75},    {800, 7, 1}};
  for (const auto& [n, t, p] : table) {
    EXPECT_EQ(mel_frames(n), t) << n;
    EXPECT_EQ(audio_patch_count(t), p) << n;
  }
  EXPECT_THROW(audio_patch_count(1), Error);
}

TEST(MelCounts, MatchesIndependentArithmeticFrom50msTo60s) {
  // Python's floor division evaluated in float64 (exact for these magnitudes), through the
  // model's own form of the count: ((wav_len + 1) // 2 // 2 - 1) // 2 + 1.
  auto pyfloor = [](double a, double b) { return static_cast<int64_t>(std::floor(a / b)); };
  int64_t checked = 0;
  for (int64_t total = 800; total <= 60 * 16000; total += 97) {
    int64_t want_patches = 0, want_chunks = 0;
    for (int64_t start = 0; start < total; start += 400000) {
      const int64_t n = std::min<int64_t>(400000, total - start);
      const int64_t T = pyfloor(double(n + 479), 160.0);
      const int64_t wav_len = T - 2;
      const int64_t e = pyfloor(double(pyfloor(double(wav_len + 1), 2.0)), 2.0);
      want_patches += pyfloor(double(e - 1), 2.0) + 1;
      ++want_chunks;
    }
    int64_t got = 0;
    const auto chunks = split_chunks(total);
    ASSERT_EQ(static_cast<int64_t>(chunks.size()), want_chunks) << total;
    for (const auto& c : chunks) got += audio_patch_count(mel_frames(c.length));
    ASSERT_EQ(got, want_patches) << total;
    ++checked;
  }
  EXPECT_GT(checked, 9000);
}

TEST(MelCounts, VllmDiscrepancyIsWhereSpecSaysItIs) {
  // vLLM counts with E = (T + 1) // 2 // 2; spec: one more exactly when (T - 2) mod 8 is 1 or 2.
  for (int64_t T = 5; T <= 3000; ++T) {
    const int64_t e_vllm = (T + 1) / 2 / 2;
    const int64_t n_vllm = (e_vllm - 1) / 2 + 1;
    const int64_t L = T - 2;
    const bool differs = L % 8 == 1 || L % 8 == 2;
    EXPECT_EQ(n_vllm, audio_patch_count(T) + (differs ? 1 : 0)) << T;
  }
}

TEST(MelCounts, TinyChunksGetZeroPlaceholders) {
  // (0 - 1) // 2 + 1 == 0 in the Python reference.
  EXPECT_EQ(audio_patch_count(mel_frames(0)), 0);
  EXPECT_EQ(audio_patch_count(mel_frames(1)), 0);
  EXPECT_EQ(audio_patch_count(mel_frames(320)), 0);
  EXPECT_EQ(audio_patch_count(mel_frames(321)), 1);
}

TEST(MelChunks, EdgesAt25Seconds) {
  EXPECT_TRUE(split_chunks(0).empty());
  auto one = split_chunks(1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].length, 1);
  auto exact = split_chunks(400000);
  ASSERT_EQ(exact.size(), 1u);  // a zero-length tail makes no chunk
  EXPECT_EQ(exact[0].start, 0);
  EXPECT_EQ(exact[0].length, 400000);
  auto plus1 = split_chunks(400001);
  ASSERT_EQ(plus1.size(), 2u);
  EXPECT_EQ(plus1[1].start, 400000);
  EXPECT_EQ(plus1[1].length, 1);
  EXPECT_EQ(mel_frames(plus1[1].length), 3);
  auto two = split_chunks(800000);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].length, 400000);
  auto golden = split_chunks(496037);
  ASSERT_EQ(golden.size(), 2u);
  EXPECT_EQ(golden[1].length, 96037);
  EXPECT_THROW(split_chunks(-5), Error);
}

// ------------------------------------------------------------------ filterbank

TEST(MelFilters, MatchesWhisperNpz) {
  auto npz = read_npz(testing_paths::golden() / "mel_filters_whisper.npz");
  ASSERT_TRUE(npz.count("mel_128"));
  ASSERT_TRUE(npz.count("mel_80"));
  EXPECT_EQ(npz["mel_128"].first, (std::vector<int64_t>{128, 201}));
  EXPECT_LE(max_abs_diff(mel_filters_128(), npz["mel_128"].second), 1e-6f);
  // The same function for another bank size, as a check that nothing is tuned to 128.
  EXPECT_LE(max_abs_diff(slaney_mel_filterbank(16000, 400, 80, 0, 8000), npz["mel_80"].second),
            1e-6f);
}

TEST(MelFilters, SlaneyScaleAndArguments) {
  EXPECT_DOUBLE_EQ(hz_to_mel_slaney(1000.0), 15.0);
  EXPECT_NEAR(mel_to_hz_slaney(hz_to_mel_slaney(5123.0)), 5123.0, 1e-9);
  EXPECT_NEAR(mel_to_hz_slaney(hz_to_mel_slaney(321.0)), 321.0, 1e-9);
  EXPECT_THROW(slaney_mel_filterbank(0, 400, 128), Error);
  EXPECT_THROW(slaney_mel_filterbank(16000, 400, 128, 9000, 8000), Error);
}

// ------------------------------------------------------------------ log-mel values

TEST(MelCpu, GoldensWithin2e4) {
  const fs::path dir = testing_paths::golden() / "tiny-a";
  auto goldens = SafetensorsFile::open(dir / "goldens.safetensors");
  std::ifstream mf(dir / "manifest.json");
  ASSERT_TRUE(mf) << "missing manifest in " << dir;
  const auto manifest = nlohmann::json::parse(mf);
  MelExtractor mel(Device::cpu());
  int compared = 0;
  for (const auto& [name, c] : manifest.at("cases").items()) {
    if (!c.contains("audio_file")) continue;
    const auto audio = read_wav(testing_paths::shared() / c.at("audio_file").get<std::string>());
    ASSERT_EQ(static_cast<int64_t>(audio.size()), c.at("num_samples").get<int64_t>()) << name;
    const auto chunks = split_chunks(static_cast<int64_t>(audio.size()));
    ASSERT_EQ(chunks.size(), c.at("chunks").size()) << name;
    for (size_t k = 0; k < chunks.size(); ++k) {
      const auto& mc = c.at("chunks")[k];
      EXPECT_EQ(chunks[k].start, mc.at("sample_start").get<int64_t>());
      const int64_t T = mel_frames(chunks[k].length);
      EXPECT_EQ(T, mc.at("mel_frames").get<int64_t>()) << name;
      EXPECT_EQ(audio_patch_count(T), mc.at("n_audio_patch").get<int64_t>()) << name;
      const std::string key = name + "/chunk" + std::to_string(k);
      EXPECT_EQ(goldens.get(key + "/n_audio_patch").data<int64_t>()[0], audio_patch_count(T));
      Tensor want = goldens.get(key + "/mel");
      Tensor got = mel.compute(std::span(audio).subspan(static_cast<size_t>(chunks[k].start),
                                                        static_cast<size_t>(chunks[k].length)));
      ASSERT_EQ(got.shape(), want.shape()) << key;
      const float err = max_abs_diff(got.to_f32_vector(), want.to_f32_vector());
      EXPECT_LE(err, 2e-4f) << key;
      std::printf("  %-24s T=%-5lld max|cpu-golden| = %.3g\n", key.c_str(),
                  static_cast<long long>(T), err);
      if (name == "silence_2s") {
        for (float v : got.to_f32_vector()) ASSERT_EQ(v, -1.5f);
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, 6);  // 5 audio cases, one with 2 chunks
}

TEST(MelCpu, ShortAndOddLengthsMatchFloat64Reference) {
  // Lengths where the reflect padding reaches into the appended zeros or past the samples.
  for (size_t n :
       {0u, 1u, 7u, 100u, 159u, 199u, 200u, 201u, 320u, 321u, 479u, 800u, 1601u, 4000u}) {
    auto x = noise(n, 17 + static_cast<uint32_t>(n));
    Tensor got = log_mel(x);
    ASSERT_EQ(got.shape(), (Shape{128, mel_frames(static_cast<int64_t>(n))})) << n;
    const auto ref = reference_log_mel(x);
    EXPECT_LE(max_abs_diff(got.to_f32_vector(), ref), 1e-4f) << "n=" << n;
  }
}

TEST(MelCpu, SilenceIsExactlyMinusOnePointFive) {
  for (size_t n : {0u, 5u, 16000u}) {
    Tensor t = log_mel(std::vector<float>(n, 0.0f));
    for (float v : t.to_f32_vector()) ASSERT_EQ(v, -1.5f) << n;
  }
}

TEST(MelCpu, DynamicRangeFloorIsPerChunk) {
  auto x = noise(16000, 3);
  for (size_t i = 8000; i < 16000; ++i) x[i] *= 1e-6f;  // second half 120 dB down
  Tensor t = log_mel(x);
  const auto v = t.to_f32_vector();
  const float mx = *std::max_element(v.begin(), v.end());
  const float mn = *std::min_element(v.begin(), v.end());
  EXPECT_NEAR(mx - mn, 2.0f, 1e-6f);  // (max - (max - 8)) / 4
}

TEST(MelCpu, ThreadCountDoesNotChangeResult) {
  auto x = noise(5 * 16000 + 123, 5);
  const int before = num_threads();
  set_num_threads(1);
  const auto one = log_mel(x).to_f32_vector();
  set_num_threads(std::max(2, before));
  const auto many = log_mel(x).to_f32_vector();
  set_num_threads(before);
  EXPECT_LE(max_abs_diff(one, many), 1e-6f);
}

TEST(MelExtractorApi, BatchEqualsSinglesAndChecksOutputs) {
  MelExtractor mel(Device::cpu());
  const auto a = noise(16000, 1), b = noise(333, 2), c = noise(40000, 3);
  std::vector<std::span<const float>> clips = {a, b, c};
  auto batch = mel.compute_batch(clips);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].to_f32_vector(), mel.compute(a).to_f32_vector());
  EXPECT_EQ(batch[1].to_f32_vector(), mel.compute(b).to_f32_vector());
  EXPECT_EQ(batch[2].to_f32_vector(), mel.compute(c).to_f32_vector());

  std::vector<Tensor> outs = {Tensor::empty({128, mel_frames(16000)}, DType::F32),
                              Tensor::empty({128, mel_frames(333)}, DType::F32),
                              Tensor::empty({128, mel_frames(40000)}, DType::F32)};
  mel.compute_into(clips, outs);
  EXPECT_EQ(outs[2].to_f32_vector(), batch[2].to_f32_vector());
  outs[1] = Tensor::empty({128, mel_frames(333) + 1}, DType::F32);
  EXPECT_THROW(mel.compute_into(clips, outs), Error);
  std::vector<Tensor> two(2);
  EXPECT_THROW(mel.compute_into(clips, two), Error);
}

TEST(MelExtractorApi, CudaRequestFallsBackWhenUnavailable) {
  MelExtractor mel(Device::cuda(0));
  if (cuda_available()) {
    EXPECT_TRUE(mel.device().is_cuda());
  } else {
    EXPECT_TRUE(mel.device().is_cpu());
    EXPECT_EQ(mel.compute(noise(1000, 9)).shape(), (Shape{128, mel_frames(1000)}));
  }
}

TEST(MelCpu, GatherClipsCopiesAnyRange) {
  std::vector<std::vector<float>> audio;
  for (size_t n : {5u, 0u, 300000u, 1u, 0u, 70000u}) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(audio.size() * 1000000 + i);
    audio.push_back(std::move(v));
  }
  std::vector<std::span<const float>> clips(audio.begin(), audio.end());
  std::vector<float> flat;
  for (const auto& a : audio) flat.insert(flat.end(), a.begin(), a.end());
  for (auto [b, e] : std::vector<std::pair<size_t, size_t>>{{0, flat.size()},
                                                            {0, 5},
                                                            {3, 7},
                                                            {5, 300005},
                                                            {6, 300006},
                                                            {299990, flat.size()},
                                                            {flat.size(), flat.size()}}) {
    std::vector<float> out(e - b, -1.0f);
    cpu::gather_clips(clips, b, e, out.data());
    ASSERT_TRUE(std::equal(out.begin(), out.end(), flat.begin() + static_cast<long>(b)))
        << b << ".." << e;
  }
}
