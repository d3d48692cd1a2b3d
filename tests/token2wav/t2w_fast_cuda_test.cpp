// The fast token2wav GPU mode (T2wPrecision::Fast: TF32 products, bf16 flash attention in the
// DiT, noise drawn on the GPU) against the exact fp32 CPU reference at the official sizes (DiT 512
// wide, 16 blocks, 8 heads x 64; HiFT 512 base channels) with full-size random weights, and the
// GPU's counter-based normal generator.
//
// Bounds. bf16 keeps 8 significant bits: q, k, v and the probabilities rounded to it carry a
// relative error of at most 2^-9 each, and an attention output (a convex mix of ~700 values with
// independent rounding errors) ends up about 2^-9 relative off, ~2e-3. TF32 (10 bits) adds ~5e-4
// per product. Sixteen residual blocks add these up along the residual stream, so the DiT's
// velocity is expected within ~1e-2 of fp32; the bounds below sit a factor ~2-3 above that and
// far below what any layout or indexing error gives (O(1)). The mel after 10 Euler steps is
// x0 + sum dt v, whose error is at most the velocity's. HiFT's decoder (TF32 convs only, the f0
// predictor and source exact) goes through exp() of the log-magnitude, which turns an absolute
// error into a relative one: 5e-2 on the waveform.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <tuple>

#include "../ops/gpu_util.h"
#include "io/t2w_writer.h"
#include "model/flow.h"
#include "model/hift.h"
#include "model/t2w_weights.h"
#include "ops/conv_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using gpu_test::kGpu;
using gpu_test::rel_l2;

constexpr double kDiTTol = 3e-2;   // one DiT call, velocity
constexpr double kMelTol = 2e-2;   // flow.inference, 10 Euler steps
constexpr double kPostTol = 3e-2;  // HiFT decoder output (log-magnitude, phase)
constexpr double kWavTol = 5e-2;   // HiFT waveform
// GPU fp32 vs CPU fp32: the same arithmetic in another order.
constexpr double kExactTol = 1e-4;

struct FullModel {
  FlowConfig cfg;
  std::map<std::string, Tensor> flow_w, hift_w;
  std::unique_ptr<Flow> cpu_flow, gpu_flow;
  std::unique_ptr<HiftGenerator> cpu_hift, gpu_hift;
};

FullModel& full() {
  static std::unique_ptr<FullModel> m = [] {
    auto p = std::make_unique<FullModel>();
    const T2wPreset preset = t2w_preset("full");
    p->cfg = preset.flow;
    p->flow_w = random_t2w_weights(flow_weight_layout(p->cfg), 11, "random flow");
    p->hift_w =
        random_t2w_weights(hift_weight_layout(preset.hift_base_channels, preset.hift_cond_channels),
                           12, "random hift");
    auto fn = [](const std::map<std::string, Tensor>& w) -> WeightFn {
      return [&w](const std::string& name) {
        auto it = w.find(name);
        return it == w.end() ? Tensor() : it->second;
      };
    };
    p->cpu_flow = std::make_unique<Flow>(p->cfg, fn(p->flow_w));
    p->gpu_flow = std::make_unique<Flow>(p->cfg, fn(p->flow_w));
    p->gpu_flow->to(kGpu);
    p->cpu_hift = std::make_unique<HiftGenerator>(fn(p->hift_w));
    p->gpu_hift = std::make_unique<HiftGenerator>(fn(p->hift_w));
    p->gpu_hift->to(kGpu);
    return p;
  }();
  return *m;
}

Tensor randn(Shape s, uint64_t seed, float scale = 1.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  Tensor t = Tensor::empty(std::move(s), DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
  return t;
}

std::vector<int32_t> random_codes(int64_t n, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> c(static_cast<size_t>(n));
  for (int32_t& v : c) v = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return c;
}

class T2wFastCuda : public gpu_test::PoisonedGpu {
 protected:
  void TearDown() override {
    full().gpu_flow->set_precision(T2wPrecision::Fp32);
    full().gpu_hift->set_precision(T2wPrecision::Fp32);
    gpu_test::PoisonedGpu::TearDown();
  }
};

// One estimator call on the CFG batch at ~700 frames (the 10 s utterance after a 4 s prompt).
TEST_F(T2wFastCuda, DiTCallAtFullSizeMatchesFp32Cpu) {
  FullModel& m = full();
  const int64_t O = m.cfg.output_size, T = 700;
  const Tensor x = randn({2, O, T}, 1), mu = randn({2, O, T}, 2), cond = randn({2, O, T}, 3);
  const Tensor spks = randn({2, O}, 4), t = Tensor::from_vector({0.3f, 0.3f}, {2});
  const Tensor ref = m.cpu_flow->estimator().forward(x, mu, t, spks, cond);

  m.gpu_flow->set_precision(T2wPrecision::Fp32);
  const Tensor exact = m.gpu_flow->estimator().forward(x, mu, t, spks, cond);
  const double e_exact = rel_l2(exact, ref);
  EXPECT_LE(e_exact, kExactTol) << "GPU fp32 DiT vs CPU";

  m.gpu_flow->set_precision(T2wPrecision::Fast);
  const Tensor fast = m.gpu_flow->estimator().forward(x, mu, t, spks, cond);
  EXPECT_TRUE(fast.device().is_cuda());
  const double e_fast = rel_l2(fast, ref);
  EXPECT_LE(e_fast, kDiTTol) << "GPU fast DiT vs CPU fp32";
  // The fast mode must really round (else the precision switch is not wired to the kernels).
  EXPECT_GT(rel_l2(fast, exact), 1e-6) << "fast and fp32 DiT outputs are identical";
  std::printf("DiT at %lld frames: rel L2 vs CPU fp32: GPU fp32 %.3g, GPU fast %.3g\n",
              static_cast<long long>(T), e_exact, e_fast);
}

// The DiT with a cache (a stream's chunk after the prompt), fast vs fp32 on the CPU.
TEST_F(T2wFastCuda, DiTCachedChunkMatchesFp32Cpu) {
  FullModel& m = full();
  const int64_t O = m.cfg.output_size;
  m.gpu_flow->set_precision(T2wPrecision::Fast);
  DiTCache cpu_cache, gpu_cache;
  const Tensor t = Tensor::from_vector({0.5f, 0.5f}, {2});
  Tensor ref, fast;
  for (int64_t T : {200, 50}) {  // prompt frames, then one chunk
    const Tensor x = randn({2, O, T}, 10 + T), mu = randn({2, O, T}, 20 + T),
                 cond = randn({2, O, T}, 30 + T), spks = randn({2, O}, 5);
    ref = m.cpu_flow->estimator().forward(x, mu, t, spks, cond, nullptr, &cpu_cache);
    fast = m.gpu_flow->estimator().forward(x, mu, t, spks, cond, nullptr, &gpu_cache);
  }
  EXPECT_EQ(gpu_cache.frames(), 250);
  EXPECT_LE(rel_l2(fast, ref), kDiTTol) << "cached chunk, GPU fast vs CPU fp32";
}

// The whole flow (encoder, 10 Euler steps with CFG) with the same injected noise.
TEST_F(T2wFastCuda, FlowInferenceMatchesFp32Cpu) {
  FullModel& m = full();
  const int64_t O = m.cfg.output_size, S = m.cfg.encoder.up_stride;
  // Short (the CPU reference of 10 full-size Euler steps dominates the GPU suite's time).
  const int64_t Np = 20, N = 50;
  const auto prompt = random_codes(Np, 7, m.cfg.vocab_size);
  const auto codes = random_codes(N, 8, m.cfg.vocab_size);
  const Tensor prompt_mel = randn({S * Np, O}, 9), spk = randn({m.cfg.spk_embed_dim}, 10);
  const Tensor noise = randn({O, S * (Np + N)}, 11);
  const Tensor ref = m.cpu_flow->inference(prompt, codes, prompt_mel, spk, 10, noise);
  m.gpu_flow->set_precision(T2wPrecision::Fast);
  const Tensor fast = m.gpu_flow->inference(prompt, codes, prompt_mel, spk, 10, noise);
  EXPECT_TRUE(fast.device().is_cuda());
  const double e = rel_l2(fast, ref);
  EXPECT_LE(e, kMelTol) << "mel, GPU fast vs CPU fp32";
  std::printf("flow mel (%lld frames): rel L2 fast vs CPU fp32 %.3g\n",
              static_cast<long long>(S * N), e);
  // Steps 2..10 were replays of one captured graph; op by op gives the same numbers.
  EXPECT_TRUE(m.gpu_flow->last_solve_graphed()) << "the Euler step was not captured";
  m.gpu_flow->set_use_graph(false);
  const Tensor eager = m.gpu_flow->inference(prompt, codes, prompt_mel, spk, 10, noise);
  m.gpu_flow->set_use_graph(true);
  EXPECT_FALSE(m.gpu_flow->last_solve_graphed());
  EXPECT_LE(rel_l2(fast, eager), 1e-5) << "graph replay vs op by op";

  // Seeded noise in the fast mode comes from the GPU generator: reproducible, and a real draw.
  const Tensor a = m.gpu_flow->inference(prompt, codes, prompt_mel, spk, 2);
  const Tensor b = m.gpu_flow->inference(prompt, codes, prompt_mel, spk, 2);
  EXPECT_LE(rel_l2(a, b), 1e-6) << "seeded fast inference is not reproducible";
}

// Stage by stage from one f0 and source (the source integrates f0 into a phase over the whole
// call, so comparing whole forwards would mostly measure the phase drift of fp32 f0 differences).
TEST_F(T2wFastCuda, HiftDecoderMatchesFp32Cpu) {
  FullModel& m = full();
  const int64_t F = 100;
  // Values in the range of real log-mels (about -10..2).
  Tensor mel = randn({80, F}, 21, 1.5f);
  for (int64_t i = 0; i < mel.numel(); ++i) mel.data<float>()[i] -= 5.f;
  const HiftNoise noise = m.cpu_hift->draw_noise(F);
  HiftGenerator& cpu = *m.cpu_hift;
  HiftGenerator& gpu = *m.gpu_hift;
  gpu.set_precision(T2wPrecision::Fast);
  const Tensor f0 = cpu.predict_f0(mel);
  EXPECT_LE(rel_l2(gpu.predict_f0(mel), f0), 1e-5) << "f0 (kept exact in the fast mode)";
  const Tensor spec = cpu.source_stft(cpu.source(f0, noise));
  const Tensor post_ref = cpu.decode(mel, spec);
  const Tensor wav_ref = cpu.to_wav(post_ref);
  const Tensor post = gpu.decode(mel, spec);
  const Tensor wav = gpu.to_wav(post);
  EXPECT_TRUE(wav.device().is_cuda());
  const double e_post = rel_l2(post, post_ref), e_wav = rel_l2(wav, wav_ref);
  EXPECT_LE(e_post, kPostTol) << "conv_post, GPU fast vs CPU fp32";
  EXPECT_LE(e_wav, kWavTol) << "waveform, GPU fast vs CPU fp32";
  std::printf("HiFT (%lld frames): rel L2 fast vs CPU fp32: conv_post %.3g, wav %.3g\n",
              static_cast<long long>(F), e_post, e_wav);
  // The whole forward in the fast mode runs and stays finite.
  const HiftOutput out = gpu.forward(mel, &noise);
  EXPECT_EQ(out.wav.shape(), wav_ref.shape());
  EXPECT_LT(rel_l2(out.wav, wav_ref), 2.0);  // finite everywhere (rel_l2 checks); not a bound
}

TEST_F(T2wFastCuda, HiftDrawsNoiseOnTheGpuInFastMode) {
  FullModel& m = full();
  HiftGenerator& g = *m.gpu_hift;
  g.set_precision(T2wPrecision::Fast);
  g.reseed(5);
  const HiftNoise a = g.draw_noise(10), a2 = g.draw_noise(10);
  g.reseed(5);
  const HiftNoise b = g.draw_noise(10);
  ASSERT_TRUE(a.noise.defined());
  EXPECT_TRUE(a.noise.device().is_cuda());
  EXPECT_EQ(a.noise.shape(), (Shape{4800, 9}));
  EXPECT_EQ(rel_l2(b.noise, a.noise), 0.0) << "same seed, same draws";
  EXPECT_GT(rel_l2(a2.noise, a.noise), 0.5) << "the second draw must continue the stream";
  // Fp32 keeps the CPU generator.
  g.set_precision(T2wPrecision::Fp32);
  EXPECT_TRUE(g.draw_noise(1).noise.device().is_cpu());
}

TEST_F(T2wFastCuda, CounterNormalIsDeterministicAndStandard) {
  const int64_t n = 1'000'000;
  const Tensor a = ops::counter_normal(42, 0, {n}, kGpu);
  const Tensor b = ops::counter_normal(42, 0, {n}, kGpu);
  const Tensor c = ops::counter_normal(43, 0, {n}, kGpu);
  EXPECT_EQ(a.to_f32_vector(), b.to_f32_vector()) << "one seed, one sequence";
  EXPECT_GT(rel_l2(c, a), 1.0) << "another seed must give other draws";
  const std::vector<float> v = a.to_f32_vector();
  double sum = 0, sq = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  // Standard errors: 1e-3 for the mean, sqrt(2/n) = 1.4e-3 for the variance.
  EXPECT_NEAR(mean, 0.0, 5e-3);
  EXPECT_NEAR(var, 1.0, 1e-2);
  // Element i depends on (seed, offset + i) only: a window equals the matching slice.
  const Tensor w = ops::counter_normal(42, 1001, {2, 500}, kGpu);
  const std::vector<float> wv = w.to_f32_vector();
  for (size_t i = 0; i < wv.size(); ++i) ASSERT_EQ(wv[i], v[1001 + i]) << "element " << i;
  // The CPU evaluates the same formula (to a few ulps of logf / sinf / cosf).
  const std::vector<float> cpu = ops::counter_normal(42, 0, {n}, Device::cpu()).to_f32_vector();
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(cpu[i]) - v[i]));
  EXPECT_LE(worst, 1e-4) << "GPU and CPU counter_normal disagree";
}

TEST_F(T2wFastCuda, FrameNoiseFastIsFrameIndexed) {
  const Tensor all = ops::frame_noise_fast(9, 80, 0, 300, kGpu);
  const Tensor part = ops::frame_noise_fast(9, 80, 120, 180, kGpu);
  EXPECT_EQ(all.shape(), (Shape{80, 300}));
  EXPECT_EQ(rel_l2(part, ops::slice_axis(all, 1, 120, 180)), 0.0);
  EXPECT_LE(rel_l2(all, ops::frame_noise_fast(9, 80, 0, 300, Device::cpu())), 1e-5);
}

TEST_F(T2wFastCuda, CausalConvChannelsLastMatchesCpu) {
  const Tensor w = gpu_test::rand_f32({96, 64, 3}, 0.1f), b = gpu_test::rand_f32({96});
  const Tensor gw = gpu_test::gpu(w), gb = gpu_test::gpu(b);
  // Without a cache.
  const Tensor x = gpu_test::rand_f32({2, 37, 64});
  EXPECT_LE(rel_l2(ops::causal_conv_cl(gpu_test::gpu(x), gw, gb, nullptr, true),
                   ops::causal_conv_cl(x, w, b, nullptr, false)),
            2e-3);
  // Chunks of 1, 2 and 5 frames through a cache (the context crosses chunk borders, and a chunk
  // shorter than the context keeps part of the old one).
  Tensor cctx, gctx;
  for (int64_t T : {5, 1, 2, 5}) {
    const Tensor xc = gpu_test::rand_f32({2, T, 64});
    const Tensor ref = ops::causal_conv_cl(xc, w, b, &cctx, false);
    const Tensor got = ops::causal_conv_cl(gpu_test::gpu(xc), gw, gb, &gctx, true);
    EXPECT_LE(rel_l2(got, ref), 2e-3) << "chunk of " << T;
    ASSERT_TRUE(gctx.defined());
    EXPECT_EQ(rel_l2(gctx, cctx), 0.0) << "context after a chunk of " << T;
  }
  // Without a bias.
  EXPECT_LE(rel_l2(ops::causal_conv_cl(gpu_test::gpu(x), gw, Tensor(), nullptr, true),
                   ops::causal_conv_cl(x, w, Tensor(), nullptr, false)),
            2e-3);
}

// The tap-by-tap form (no im2col): the same conv as the CPU's, at the DiT's shape and through a
// cache with chunks shorter than, equal to and longer than the context.
TEST_F(T2wFastCuda, CausalConvShiftedTapsMatchesCpu) {
  for (const auto& [C, Co, K] : {std::tuple<int64_t, int64_t, int64_t>{512, 512, 3},
                                 {64, 96, 3},
                                 {48, 40, 4},
                                 {32, 24, 1}}) {
    SCOPED_TRACE(::testing::Message() << "C " << C << " C_out " << Co << " K " << K);
    const Tensor w = gpu_test::rand_f32({Co, C, K}, 1.f / std::sqrt(static_cast<float>(C * K)));
    const Tensor b = gpu_test::rand_f32({Co});
    const Tensor gw = gpu_test::gpu(w), gb = gpu_test::gpu(b);
    const Tensor taps = ops::conv_taps(gw);
    ASSERT_EQ(taps.shape(), (Shape{K, Co, C}));
    // The taps are w[:, :, j] as [C_out, C] matrices.
    const std::vector<float> tv = taps.to_f32_vector();
    const float* wp = w.data<float>();
    for (int64_t j = 0; j < K; ++j)
      for (int64_t o : {int64_t{0}, Co / 2, Co - 1})
        for (int64_t c : {int64_t{0}, C / 3, C - 1})
          ASSERT_EQ(tv[static_cast<size_t>((j * Co + o) * C + c)], wp[(o * C + c) * K + j]);
    // Without a cache, at ~700 frames (the DiT's) and at 1 frame.
    for (int64_t T : {700, 1}) {
      const Tensor x = gpu_test::rand_f32({2, T, C});
      const Tensor ref = ops::causal_conv_cl(x, w, b, nullptr, false);
      const Tensor got = ops::causal_conv_cl(gpu_test::gpu(x), gw, gb, nullptr, true, taps);
      EXPECT_TRUE(got.device().is_cuda());
      EXPECT_LE(rel_l2(got, ref), 2e-3) << T << " frames";
      EXPECT_LE(rel_l2(ops::causal_conv_cl(gpu_test::gpu(x), gw, Tensor(), nullptr, true, taps),
                       ops::causal_conv_cl(x, w, Tensor(), nullptr, false)),
                2e-3)
          << T << " frames without a bias";
    }
    // Through a cache: chunks of 5, 1, 2, 3 and 40 frames (a first chunk with zero context, then
    // contexts that come partly from the previous context).
    Tensor cctx, gctx;
    for (int64_t T : {5, 1, 2, 3, 40}) {
      const Tensor xc = gpu_test::rand_f32({2, T, C});
      const Tensor ref = ops::causal_conv_cl(xc, w, b, &cctx, false);
      const Tensor got = ops::causal_conv_cl(gpu_test::gpu(xc), gw, gb, &gctx, true, taps);
      EXPECT_LE(rel_l2(got, ref), 2e-3) << "chunk of " << T;
      ASSERT_TRUE(gctx.defined());
      EXPECT_EQ(rel_l2(gctx, cctx), 0.0) << "context after a chunk of " << T;
    }
  }
}

TEST_F(T2wFastCuda, CausalConvRejectsBadTaps) {
  const Tensor w = gpu_test::gpu(gpu_test::rand_f32({8, 4, 3}));
  const Tensor x = gpu_test::gpu(gpu_test::rand_f32({1, 5, 4}));
  EXPECT_THROW(ops::causal_conv_cl(x, w, Tensor(), nullptr, true,
                                   gpu_test::gpu(gpu_test::rand_f32({3, 4, 8}))),
               Error);
}

// In bf16 for the flash kernel: the same values as the F32 split rounded once, at the DiT's shape.
TEST_F(T2wFastCuda, SplitQkvNormWritesBf16) {
  const int64_t H = 8, D = 64, I = H * D;
  const Tensor qkv = gpu_test::rand_f32({2, 700, 3 * I}, 2.f);
  const Tensor qw = gpu_test::rand_f32({D}), qb = gpu_test::rand_f32({D}),
               kw = gpu_test::rand_f32({D}), kb = gpu_test::rand_f32({D});
  const std::vector<Tensor> ref = ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f);
  const Tensor gq = gpu_test::gpu(qkv);
  const std::vector<Tensor> got =
      ops::split_qkv_norm(gq, H, D, gpu_test::gpu(qw), gpu_test::gpu(qb), gpu_test::gpu(kw),
                          gpu_test::gpu(kb), 1e-5f, DType::BF16);
  const std::vector<Tensor> cpu_bf16 =
      ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f, DType::BF16);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].dtype(), DType::BF16) << "part " << i;
    EXPECT_EQ(cpu_bf16[i].dtype(), DType::BF16) << "part " << i;
    EXPECT_TRUE(got[i].device().is_cuda());
    // bf16 rounding: at most 2^-9 relative per element, ~1.1e-3 rms.
    EXPECT_LE(rel_l2(got[i], ref[i]), 2.5e-3) << "part " << i;
    EXPECT_GT(rel_l2(got[i], ref[i]), 0.0) << "part " << i << " was not rounded";
    // The GPU and CPU round the (nearly) same floats: a rare one-ulp difference at most.
    EXPECT_LE(rel_l2(got[i], cpu_bf16[i]), 1e-3) << "part " << i;
  }
  // The attention reads them as they are: the same output as from the F32 parts.
  ops::AttentionOptions opt;
  opt.scale = 0.125f;
  opt.compute = DType::BF16;
  const std::vector<Tensor> f32 = ops::split_qkv_norm(
      gq, H, D, gpu_test::gpu(qw), gpu_test::gpu(qb), gpu_test::gpu(kw), gpu_test::gpu(kb), 1e-5f);
  EXPECT_LE(rel_l2(ops::attention(got[0], got[1], got[2], opt),
                   ops::attention(f32[0], f32[1], f32[2], opt)),
            1e-3);
  EXPECT_THROW(ops::split_qkv_norm(gq, H, D, gpu_test::gpu(qw), gpu_test::gpu(qb),
                                   gpu_test::gpu(kw), gpu_test::gpu(kb), 1e-5f, DType::F16),
               Error);
}

TEST_F(T2wFastCuda, SplitQkvNormMatchesCpu) {
  const int64_t H = 8, D = 64, I = H * D;
  const Tensor qkv = gpu_test::rand_f32({2, 123, 3 * I}, 2.f);
  const Tensor qw = gpu_test::rand_f32({D}), qb = gpu_test::rand_f32({D}),
               kw = gpu_test::rand_f32({D}), kb = gpu_test::rand_f32({D});
  const std::vector<Tensor> ref = ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f);
  const std::vector<Tensor> got =
      ops::split_qkv_norm(gpu_test::gpu(qkv), H, D, gpu_test::gpu(qw), gpu_test::gpu(qb),
                          gpu_test::gpu(kw), gpu_test::gpu(kb), 1e-5f);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(got[i].device().is_cuda());
    EXPECT_LE(rel_l2(got[i], ref[i]), 1e-6) << "part " << i;
  }
}

TEST_F(T2wFastCuda, ChunksLastMatchesCpu) {
  const Tensor x = gpu_test::rand_f32({2, 9 * 48});
  const Tensor g = ops::chunks_last(gpu_test::gpu(x), 9);
  EXPECT_EQ(g.shape(), (Shape{9, 2, 48}));
  EXPECT_EQ(rel_l2(g, ops::chunks_last(x, 9)), 0.0);
}

TEST_F(T2wFastCuda, LinearTf32IsCloseAndFusesTheBias) {
  // 700 rows as the DiT's; K = 512. TF32 operands: relative error ~2^-11 * sqrt-ish growth.
  const Tensor x = gpu_test::rand_f32({2, 700, 512}), w = gpu_test::rand_f32({1536, 512}, 0.05f),
               b = gpu_test::rand_f32({1536});
  const Tensor ref = ops::linear(x, w, b);
  const Tensor y = ops::linear_tf32(gpu_test::gpu(x), gpu_test::gpu(w), gpu_test::gpu(b));
  EXPECT_EQ(y.shape(), ref.shape());
  const double e = rel_l2(y, ref);
  EXPECT_LE(e, 2e-3);
  // About 4e-4 when cuBLAS runs it on the TF32 tensor cores (informative: cuBLAS may choose).
  std::printf("linear_tf32 [1400 x 512] x [1536 x 512]^T: rel L2 vs fp32 %.3g\n", e);
  // Without bias, and with rows that start at an odd float offset (a view 1 row in of width 3).
  const Tensor x3 = gpu_test::rand_f32({101, 3}), w3 = gpu_test::rand_f32({7, 3});
  const Tensor v3 = gpu_test::gpu(x3).slice_rows(1, 101);
  EXPECT_LE(rel_l2(ops::linear_tf32(v3, gpu_test::gpu(w3)), ops::linear(x3.slice_rows(1, 101), w3)),
            2e-3);
}

TEST_F(T2wFastCuda, ConvTf32IsClose) {
  const Tensor x = gpu_test::rand_f32({2, 256, 300}), w = gpu_test::rand_f32({128, 256, 3}, 0.05f),
               b = gpu_test::rand_f32({128});
  const Tensor ref = ops::conv1d_ex(x, w, b, {.pad_left = 2});
  const Tensor y = ops::conv1d_ex(gpu_test::gpu(x), gpu_test::gpu(w), gpu_test::gpu(b),
                                  {.pad_left = 2, .tf32 = true});
  EXPECT_LE(rel_l2(y, ref), 2e-3);
  const Tensor wt = gpu_test::rand_f32({256, 128, 16}, 0.05f);
  const Tensor reft = ops::conv_transpose1d(x, wt, b, 8, 4);
  const Tensor yt =
      ops::conv_transpose1d(gpu_test::gpu(x), gpu_test::gpu(wt), gpu_test::gpu(b), 8, 4, true);
  EXPECT_LE(rel_l2(yt, reft), 2e-3);
}

// The stride-1 convs in TF32 run tap by tap without im2col: HiFT's shapes (dilated "same"
// resblock convs up to 240000 samples, conv_pre / conv_post, 1x1), pads that leave no tap covering
// every output (y starts from zeros), inputs shorter than the padding, no bias, and a batch of 2.
TEST_F(T2wFastCuda, ConvTf32TapsMatchCpu) {
  struct Case {
    int64_t B, C, Co, T, K, d, pl, pr;
    bool bias;
  };
  for (const Case& c :
       {Case{1, 64, 64, 240000, 11, 5, 25, 25, true}, Case{1, 128, 128, 12000, 7, 3, 9, 9, true},
        Case{1, 80, 512, 700, 7, 1, 3, 3, true}, Case{1, 64, 18, 24000, 7, 1, 3, 3, true},
        Case{2, 32, 48, 300, 1, 1, 0, 0, true}, Case{2, 32, 48, 301, 3, 1, 0, 4, true},
        Case{1, 16, 24, 50, 3, 2, 6, 1, false}, Case{1, 16, 24, 2, 7, 1, 3, 3, true}}) {
    SCOPED_TRACE(::testing::Message()
                 << "B " << c.B << " C " << c.C << " -> " << c.Co << " T " << c.T << " K " << c.K
                 << " d " << c.d << " pad " << c.pl << "/" << c.pr);
    const Tensor x = gpu_test::rand_f32({c.B, c.C, c.T});
    const Tensor w =
        gpu_test::rand_f32({c.Co, c.C, c.K}, 1.f / std::sqrt(static_cast<float>(c.C * c.K)));
    const Tensor b = c.bias ? gpu_test::rand_f32({c.Co}) : Tensor();
    const ops::Conv1dOptions o{.pad_left = c.pl, .pad_right = c.pr, .dilation = c.d};
    ops::Conv1dOptions o32 = o;
    o32.tf32 = true;
    const Tensor ref = ops::conv1d_ex(x, w, b, o);
    const Tensor got = ops::conv1d_ex(gpu_test::gpu(x), gpu_test::gpu(w),
                                      c.bias ? gpu_test::gpu(b) : Tensor(), o32);
    EXPECT_LE(rel_l2(got, ref), 2e-3);
  }
}

}  // namespace
}  // namespace stepaudio
