// The HiFT vocoder on CUDA (weights moved to the GPU with HiftGenerator::to) against the
// token2wav-a goldens with the recorded NSF draws injected, within the CPU golden tests'
// tolerances (hift_test.cpp: f0 2e-3, s 1e-3, s_stft / conv_post 3e-3, wav 2e-3), and against the
// CPU reference: stage by stage on the same inputs (tight), and the whole forward (the source's
// phase integrates f0 over ~1e5 rad, so a 1e-7 relative difference in the predicted f0 moves it
// by ~1e-2 rad; the whole-forward bound is therefore the golden one), then a stream.
#include "model/hift.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../ops/gpu_util.h"
#include "../test_paths.h"
#include "io/safetensors.h"
#include "model/t2w_weights.h"
#include "ops/vocoder_ops.h"

namespace stepaudio {
namespace {

using gpu_test::rel_l2;

std::string t2w(const std::string& name) {
  return (testing_paths::golden() / "token2wav-a" / name).string();
}

const T2wWeights& weights() {
  static const T2wWeights w = T2wWeights::load(t2w("hift.pt"));
  return w;
}

Tensor golden(const std::string& name) {
  static const SafetensorsFile f = SafetensorsFile::open(t2w("goldens.safetensors"));
  return f.get(name).clone();
}

double max_abs(const Tensor& got, const Tensor& want, const std::string& what) {
  EXPECT_EQ(got.shape(), want.shape()) << what;
  if (got.shape() != want.shape()) return INFINITY;
  const auto a = got.to_f32_vector(), b = want.to_f32_vector();
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates
  }
  std::printf("  %-36s max|diff| %.3g\n", what.c_str(), m);
  return m;
}

class T2wHiftCuda : public gpu_test::PoisonedGpu,
                    public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    gpu_test::PoisonedGpu::SetUp();
    gpu.to(gpu_test::kGpu);
  }
  std::string c = GetParam();
  HiftGenerator cpu{weights().fn()}, gpu{weights().fn()};
  Tensor mel = golden(c + "/mel");
};

TEST_P(T2wHiftCuda, StagesMatchCpu) {
  ASSERT_TRUE(gpu.device().is_cuda());
  const Tensor f0 = gpu.predict_f0(mel);
  EXPECT_TRUE(f0.device().is_cuda());
  EXPECT_LE(rel_l2(f0, cpu.predict_f0(mel)), 1e-5);
  const HiftNoise noise{golden(c + "/rand_ini"), golden(c + "/noise")};
  const Tensor gf0 = golden(c + "/f0");
  EXPECT_LE(rel_l2(gpu.source(gf0, noise), cpu.source(gf0, noise)), 1e-5);
  const Tensor s = golden(c + "/s");
  EXPECT_LE(rel_l2(gpu.source_stft(s), cpu.source_stft(s)), 1e-5);
  const Tensor spec = golden(c + "/s_stft");
  EXPECT_LE(rel_l2(gpu.decode(mel, spec), cpu.decode(mel, spec)), 1e-5);
  // Not every case records conv_post: the CPU decoder's output is the input here.
  const Tensor post = cpu.decode(mel, spec);
  EXPECT_LE(rel_l2(gpu.to_wav(post), cpu.to_wav(post)), 1e-5);
}

TEST_P(T2wHiftCuda, ForwardMatchesGoldens) {
  const HiftNoise noise{golden(c + "/rand_ini"), golden(c + "/noise")};
  const HiftOutput g = gpu.forward(mel, &noise);
  EXPECT_TRUE(g.wav.device().is_cuda());
  EXPECT_LE(max_abs(g.f0, golden(c + "/f0"), c + "/f0 (GPU)"), 2e-3);
  EXPECT_LE(max_abs(g.s, golden(c + "/s"), c + "/s (GPU)"), 1e-3);
  EXPECT_LE(max_abs(g.s_stft, golden(c + "/s_stft"), c + "/s_stft (GPU)"), 3e-3);
  if (c == "hift_gen")
    EXPECT_LE(max_abs(g.conv_post, golden(c + "/conv_post"), c + "/conv_post (GPU)"), 3e-3);
  EXPECT_LE(max_abs(g.wav, golden(c + "/wav"), c + "/wav (GPU)"), 2e-3);
  const HiftOutput r = cpu.forward(mel, &noise);
  EXPECT_LE(rel_l2(g.f0, r.f0), 1e-5) << "f0 GPU vs CPU";  // f0 is hundreds of Hz
  EXPECT_LE(max_abs(g.wav, r.wav, c + "/wav GPU vs CPU"), 2e-3);
  // Without draws the source is the sines alone.
  const HiftNoise zeros;
  EXPECT_LE(max_abs(gpu.forward(mel, &zeros).wav, golden(c + "/wav_norand"), c + "/wav_norand"),
            2e-3);
}

INSTANTIATE_TEST_SUITE_P(Cases, T2wHiftCuda, ::testing::Values("hift_gen", "hift_prompt"),
                         [](const auto& i) { return i.param; });

// The vocoder stream (8 cached mel frames, source cache, Hamming cross-fade) on the GPU against
// the same stream on the CPU; both generators draw the same NSF noise from the same seed.
TEST(T2wHiftCudaStream, MatchesCpuStream) {
  ASSERT_TRUE(cuda_available());
  HiftGenerator cpu{weights().fn(), 7}, gpu{weights().fn(), 7};
  gpu.to(gpu_test::kGpu);
  const Tensor mel = golden("hift_gen/mel");
  const int64_t F = mel.dim(1), chunk = std::max<int64_t>(F / 3, 1);
  HiftStream sc(cpu), sg(gpu);
  std::vector<float> a, b;
  for (int64_t at = 0; at < F; at += chunk) {
    const int64_t end = std::min(F, at + chunk);
    const Tensor part = ops::slice_time(mel, at, end);
    const Tensor pc = sc.push(part, end == F), pg = sg.push(part, end == F);
    EXPECT_TRUE(pg.numel() == 0 || pg.device().is_cuda());
    const auto va = pc.to_f32_vector(), vb = pg.to_f32_vector();
    a.insert(a.end(), va.begin(), va.end());
    b.insert(b.end(), vb.begin(), vb.end());
  }
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(static_cast<int64_t>(a.size()), F * 480);
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  std::printf("  stream GPU vs CPU max|diff| %.3g\n", m);
  EXPECT_LE(m, 2e-3);
}

}  // namespace
}  // namespace stepaudio
