// The CUDA log-mel against the goldens and against the CPU reference (GPU machine only).
#include <gtest/gtest.h>

#include <cuda_runtime.h>
#include <sndfile.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "audio/mel.h"
#include "io/safetensors.h"

using namespace stepaudio;
namespace fs = std::filesystem;

namespace {

std::vector<float> read_wav_ch0(const fs::path& p) {
  SF_INFO info{};
  SNDFILE* f = sf_open(p.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  std::vector<float> inter(static_cast<size_t>(info.frames * info.channels));
  const sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
  sf_close(f);
  if (got != info.frames || info.samplerate != 16000)
    throw std::runtime_error("bad 16 kHz wav " + p.string());
  std::vector<float> out(static_cast<size_t>(info.frames));
  for (size_t i = 0; i < out.size(); ++i) out[i] = inter[i * static_cast<size_t>(info.channels)];
  return out;
}

std::vector<float> noise(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 0.2f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  // A quiet stretch so the max-8 floor is active somewhere in most clips.
  for (size_t i = v.size() / 3; i < v.size() / 2; ++i) v[i] *= 1e-5f;
  return v;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto x = a.to_f32_vector(), y = b.to_f32_vector();
  float m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) return INFINITY;
    m = std::max(m, std::fabs(x[i] - y[i]));
  }
  return m;
}

MelExtractor& gpu() {
  static MelExtractor m(Device::cuda(0));
  return m;
}

}  // namespace

TEST(MelCuda, RunsOnTheGpu) {
  ASSERT_TRUE(cuda_available()) << "test_gpu needs a CUDA device";
  ASSERT_TRUE(gpu().device().is_cuda());
}

TEST(MelCuda, GoldensWithin2e4) {
  const fs::path dir = testing_paths::golden() / "tiny-a";
  auto goldens = SafetensorsFile::open(dir / "goldens.safetensors");
  std::ifstream mf(dir / "manifest.json");
  ASSERT_TRUE(mf) << "missing manifest in " << dir;
  const auto manifest = nlohmann::json::parse(mf);
  int compared = 0;
  for (const auto& [name, c] : manifest.at("cases").items()) {
    if (!c.contains("audio_file")) continue;
    const auto audio =
        read_wav_ch0(testing_paths::shared() / c.at("audio_file").get<std::string>());
    const auto chunks = split_chunks(static_cast<int64_t>(audio.size()));
    std::vector<std::span<const float>> clips;
    for (const auto& ch : chunks)
      clips.push_back(
          std::span(audio).subspan(static_cast<size_t>(ch.start), static_cast<size_t>(ch.length)));
    auto mels = gpu().compute_batch(clips);
    ASSERT_EQ(mels.size(), c.at("chunks").size()) << name;
    for (size_t k = 0; k < mels.size(); ++k) {
      EXPECT_TRUE(mels[k].device().is_cuda());
      const std::string key = name + "/chunk" + std::to_string(k);
      const float err = max_abs_diff(mels[k], goldens.get(key + "/mel"));
      EXPECT_LE(err, 2e-4f) << key;
      std::printf("  %-24s max|cuda-golden| = %.3g\n", key.c_str(), err);
      if (name == "silence_2s") {
        for (float v : mels[k].to_f32_vector()) ASSERT_EQ(v, -1.5f);
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, 6);
}

TEST(MelCuda, MatchesCpuOnRandomAudio) {
  MelExtractor cpu(Device::cpu());
  for (size_t n : {0u, 1u, 200u, 321u, 800u, 16000u, 240000u, 400000u}) {
    const auto x = noise(n, static_cast<uint32_t>(n) + 11);
    const float err = max_abs_diff(gpu().compute(x), cpu.compute(x));
    EXPECT_LE(err, 1e-4f) << "n=" << n;
  }
}

TEST(MelCuda, MixedBatchMatchesCpuAndSingles) {
  MelExtractor cpu(Device::cpu());
  std::mt19937 g(7);
  std::uniform_int_distribution<int> len(0, 400000);
  std::vector<std::vector<float>> audio;
  for (int i = 0; i < 23; ++i) audio.push_back(noise(static_cast<size_t>(len(g)), 100u + i));
  audio.push_back(noise(0, 1));
  audio.push_back(noise(1, 2));
  audio.push_back(std::vector<float>(5000, 0.0f));  // silence inside a batch: exactly -1.5
  audio.push_back(noise(400000, 3));
  std::vector<std::span<const float>> clips(audio.begin(), audio.end());
  auto dev = gpu().compute_batch(clips);
  auto host = gpu().compute_batch(clips, /*to_host=*/true);
  ASSERT_EQ(dev.size(), clips.size());
  for (size_t i = 0; i < clips.size(); ++i) {
    EXPECT_TRUE(host[i].device().is_cpu());
    EXPECT_EQ(max_abs_diff(dev[i], host[i]), 0.0f) << i;
    EXPECT_LE(max_abs_diff(host[i], cpu.compute(clips[i])), 1e-4f) << "clip " << i;
    EXPECT_LE(max_abs_diff(host[i], gpu().compute(clips[i])), 1e-5f) << "single " << i;
  }
  for (float v : host[25].to_f32_vector()) ASSERT_EQ(v, -1.5f);
}

TEST(MelCuda, ComputeIntoWritesEveryElement) {
  const auto a = noise(240000, 21), b = noise(12345, 22);
  std::vector<std::span<const float>> clips = {a, b};
  std::vector<Tensor> outs;
  for (const auto& c : clips) {
    Tensor t = Tensor::empty({128, mel_frames(static_cast<int64_t>(c.size()))}, DType::F32,
                             Device::cuda(0));
    ASSERT_EQ(cudaMemset(t.raw(), 0xff, t.nbytes()), cudaSuccess);  // NaN poison
    outs.push_back(t);
  }
  gpu().compute_into(clips, outs);
  MelExtractor cpu(Device::cpu());
  for (size_t i = 0; i < clips.size(); ++i)
    EXPECT_LE(max_abs_diff(outs[i], cpu.compute(clips[i])), 1e-4f) << i;
  std::vector<Tensor> wrong = {outs[1], outs[0]};
  EXPECT_THROW(gpu().compute_into(clips, wrong), Error);
}

TEST(MelCuda, ResultsOutliveTheExtractorAndRepeat) {
  const auto x = noise(160000, 31);
  Tensor first, second;
  {
    MelExtractor m(Device::cuda(0));
    first = m.compute(x);
    second = m.compute(x);
  }
  EXPECT_EQ(max_abs_diff(first, second), 0.0f);
  EXPECT_LE(max_abs_diff(first, log_mel(x)), 1e-4f);
}
