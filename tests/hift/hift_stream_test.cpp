// HiFT behaviour beyond the goldens: seeded draws, argument errors, and the streaming helper.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../test_paths.h"
#include "io/safetensors.h"
#include "model/hift.h"
#include "model/t2w_weights.h"
#include "ops/vocoder_ops.h"

namespace stepaudio {
namespace {

const T2wWeights& weights() {
  static const T2wWeights w =
      T2wWeights::load((testing_paths::golden() / "token2wav-a" / "hift.pt").string());
  return w;
}

// The 114-frame mel of the whole flow output would be ideal; the goldens hold hift_gen/mel (74
// frames) and hift_prompt/mel (40): laid end to end they make a 114-frame input.
Tensor long_mel() {
  static const SafetensorsFile g = SafetensorsFile::open(
      (testing_paths::golden() / "token2wav-a" / "goldens.safetensors").string());
  return ops::concat_time(g.get("hift_gen/mel"), g.get("hift_prompt/mel"));
}

double max_abs_diff(const Tensor& a, const Tensor& b, int64_t begin, int64_t end) {
  const auto x = a.to_f32_vector(), y = b.to_f32_vector();
  double d = 0;
  for (int64_t i = begin; i < end; ++i) d = std::max(d, std::fabs(double(x[i]) - y[i]));
  return d;
}

double rms(const Tensor& a, int64_t begin, int64_t end) {
  const auto x = a.to_f32_vector();
  double s = 0;
  for (int64_t i = begin; i < end; ++i) s += double(x[i]) * x[i];
  return std::sqrt(s / std::max<int64_t>(1, end - begin));
}

TEST(Hift, SeededDrawsAreDeterministic) {
  Tensor mel = long_mel().clone();
  HiftGenerator a(weights().fn(), 7), b(weights().fn(), 7), c(weights().fn(), 8);
  Tensor wa = a.forward(mel).wav, wb = b.forward(mel).wav, wc = c.forward(mel).wav;
  EXPECT_EQ(wa.to_f32_vector(), wb.to_f32_vector());
  EXPECT_GT(max_abs_diff(wa, wc, 0, wa.numel()), 1e-6);
  // A second call draws new values; reseeding repeats the first.
  Tensor wa2 = a.forward(mel).wav;
  EXPECT_GT(max_abs_diff(wa, wa2, 0, wa.numel()), 1e-6);
  a.reseed(7);
  EXPECT_EQ(a.forward(mel).wav.to_f32_vector(), wa.to_f32_vector());
}

TEST(Hift, DrawnNoiseIsStandardNormal) {
  HiftGenerator gen(weights().fn(), 1);
  HiftNoise n = gen.draw_noise(40);
  ASSERT_EQ(n.noise.shape(), (Shape{40 * 480, 9}));
  ASSERT_EQ(n.rand_ini.shape(), (Shape{9}));
  double sum = 0, sq = 0;
  for (float v : n.noise.to_f32_vector()) sum += v, sq += double(v) * v;
  const double count = static_cast<double>(n.noise.numel());
  EXPECT_NEAR(sum / count, 0.0, 0.02);
  EXPECT_NEAR(sq / count, 1.0, 0.02);
  for (float v : n.rand_ini.to_f32_vector()) EXPECT_TRUE(v >= 0.f && v < 1.f) << v;
}

TEST(Hift, Errors) {
  HiftGenerator gen(weights().fn());
  auto expect_error = [](auto&& fn, const std::string& text) {
    try {
      fn();
      ADD_FAILURE() << "expected an error containing '" << text << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_error([&] { gen.forward(Tensor::zeros({79, 10}, DType::F32)); }, "mel must be [80");
  expect_error([&] { gen.forward(Tensor::zeros({80, 0}, DType::F32)); }, "frames >= 1");
  HiftNoise bad{{}, Tensor::zeros({100, 9}, DType::F32)};
  expect_error([&] { gen.forward(Tensor::zeros({80, 2}, DType::F32), &bad); }, "noise");
  expect_error(
      [&] {
        gen.forward(Tensor::zeros({80, 2}, DType::F32), nullptr, Tensor::zeros({961}, DType::F32));
      },
      "cache_source");
  expect_error(
      [&] {
        gen.decode(Tensor::zeros({80, 3}, DType::F32), Tensor::zeros({18, 10}, DType::F32));
      },
      "does not fit");
  // A missing or misshapen weight names the tensor.
  const WeightFn full = weights().fn();
  expect_error(
      [&] {
        HiftGenerator g(
            [&](const std::string& n) { return n == "ups.1.weight" ? Tensor() : full(n); });
      },
      "ups.1.weight");
  expect_error(
      [&] {
        HiftGenerator g([&](const std::string& n) {
          return n == "resblocks.4.convs2.1.weight" ? Tensor::zeros({16, 16, 5}, DType::F32)
                                                    : full(n);
        });
      },
      "resblocks.4.convs2.1.weight");
}

TEST(HiftStream, ChunksJoinToTheOfflineLength) {
  HiftGenerator gen(weights().fn());
  Tensor mel = long_mel();
  const int64_t F = mel.dim(1);
  HiftNoise zeros;
  Tensor offline = gen.forward(mel, &zeros).wav;

  HiftStream stream(gen);
  std::vector<float> joined;
  const int64_t chunk = 50;  // 25 tokens of mel, as token2wav streams
  int64_t first_emitted = -1;
  for (int64_t b = 0; b < F; b += chunk) {
    const int64_t e = std::min(F, b + chunk);
    Tensor piece = stream.push(ops::slice_time(mel, b, e), e == F, &zeros);
    if (first_emitted < 0) first_emitted = piece.numel();
    auto v = piece.to_f32_vector();
    joined.insert(joined.end(), v.begin(), v.end());
  }
  ASSERT_EQ(static_cast<int64_t>(joined.size()), 480 * F);
  EXPECT_EQ(first_emitted, 480 * (chunk - HiftStream::kMelCacheFrames));
  Tensor streamed = Tensor::from_vector(joined, {480 * F});

  // Before any chunk boundary's reach the first chunk is the offline computation.
  const int64_t exact = 480 * (chunk - 16);
  EXPECT_LE(max_abs_diff(streamed, offline, 0, exact), 1e-4);
  // Later the NSF phase restarts with each call (as in the reference), so samples differ, but the
  // loudness follows the offline output frame by frame (20 ms windows, away from silence).
  const double total = rms(offline, 0, 480 * F);
  for (int64_t f = 0; f + 2 <= F; f += 2) {
    const double ro = rms(offline, 480 * f, 480 * (f + 2)),
                 rs = rms(streamed, 480 * f, 480 * (f + 2));
    if (ro < 0.3 * total) continue;
    EXPECT_NEAR(rs / ro, 1.0, 0.5) << "frames " << f << ".." << f + 2;
  }
  std::printf("  streamed vs offline: max|diff| first chunk %.3g, overall %.3g (rms %.3g)\n",
              max_abs_diff(streamed, offline, 0, exact),
              max_abs_diff(streamed, offline, 0, 480 * F), total);
}

TEST(HiftStream, CrossfadeIsHamming) {
  Tensor head = Tensor::from_vector({1, 1, 1, 1}, {4});
  Tensor tail = Tensor::from_vector({0, 0, 0, 0}, {4});
  // np.hamming(8) = 0.08, 0.25319469, 0.64235963, 0.95444568, then mirrored.
  const double w[8] = {0.08,       0.25319469, 0.64235963, 0.95444568,
                       0.95444568, 0.64235963, 0.25319469, 0.08};
  auto fade_in = ops::hamming_crossfade(head, tail).to_f32_vector();
  auto fade_out = ops::hamming_crossfade(tail, head).to_f32_vector();
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(fade_in[i], w[i], 1e-7);
    EXPECT_NEAR(fade_out[i], w[4 + i], 1e-7);
  }
}

}  // namespace
}  // namespace stepaudio
