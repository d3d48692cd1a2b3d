// The CPU side of the fast token2wav mode: the precision names, the ops it adds (linear_tf32,
// the tf32 conv flag, chunks_last, counter_normal, frame_noise_fast) and that on the CPU the fast
// mode computes exactly the fp32 reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "flow_golden.h"
#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using flow_test::data;
using flow_test::golden;

Tensor randn(Shape s, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (auto& x : v) x = d(g);
  return Tensor::from_vector(v, s);
}

void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(a.to_f32_vector(), b.to_f32_vector()) << what;
}

TEST(T2wPrecision, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_t2w_precision("fp32", "x"), T2wPrecision::Fp32);
  EXPECT_EQ(parse_t2w_precision("fast", "x"), T2wPrecision::Fast);
  EXPECT_STREQ(t2w_precision_name(T2wPrecision::Fp32), "fp32");
  EXPECT_STREQ(t2w_precision_name(T2wPrecision::Fast), "fast");
  for (const char* bad : {"", "FP32", "bf16", "fast "}) {
    try {
      parse_t2w_precision(bad, "--t2w-precision");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--t2w-precision: unknown token2wav precision"),
                std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("expected fp32 or fast"), std::string::npos);
    }
  }
}

TEST(T2wPrecision, LinearTf32AndConvFlagAreExactOnTheCpu) {
  const Tensor x = randn({3, 5, 24}, 1), w = randn({10, 24}, 2), b = randn({10}, 3);
  expect_same(ops::linear_tf32(x, w, b), ops::linear(x, w, b), "linear_tf32 with bias");
  expect_same(ops::linear_tf32(x, w), ops::linear(x, w), "linear_tf32 without bias");
  EXPECT_THROW(ops::linear_tf32(x, randn({10, 23}, 4), b), Error);
  const Tensor cx = randn({2, 6, 30}, 5), cw = randn({4, 6, 3}, 6), cb = randn({4}, 7);
  expect_same(ops::conv1d_ex(cx, cw, cb, {.pad_left = 2, .tf32 = true}),
              ops::conv1d_ex(cx, cw, cb, {.pad_left = 2}), "conv1d_ex tf32 flag");
  const Tensor tw = randn({6, 4, 8}, 8);
  expect_same(ops::conv_transpose1d(cx, tw, cb, 4, 2, true),
              ops::conv_transpose1d(cx, tw, cb, 4, 2), "conv_transpose1d tf32 flag");
}

TEST(T2wPrecision, CausalConvChannelsLastIsTheCausalConv) {
  const Tensor w = randn({5, 4, 3}, 11), b = randn({5}, 12), x = randn({2, 9, 4}, 13);
  // Zero left context = conv1d_ex with two frames of left padding, channels-first.
  const Tensor ref =
      ops::transpose_last2(ops::conv1d_ex(ops::transpose_last2(x), w, b, {.pad_left = 2}));
  expect_same(ops::causal_conv_cl(x, w, b, nullptr, true), ref, "no cache");
  // Through a cache in chunks of 4, 1 and 4 frames: the same frames.
  Tensor ctx;
  std::vector<Tensor> parts;
  int64_t at = 0;
  for (int64_t n : {4, 1, 4}) {
    parts.push_back(ops::causal_conv_cl(ops::slice_axis(x, 1, at, at + n), w, b, &ctx, false));
    at += n;
    ASSERT_EQ(ctx.shape(), (Shape{2, 4, 2}));
  }
  const Tensor chunked = ops::concat_axis(parts, 1);
  const std::vector<float> a = chunked.to_f32_vector(), r = ref.to_f32_vector();
  ASSERT_EQ(a.size(), r.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], r[i], 1e-5) << i;
  // The context is the last two input frames, channels-first.
  expect_same(ctx, ops::transpose_last2(ops::slice_axis(x, 1, 7, 9)), "context");
  Tensor bad = randn({2, 4, 3}, 1);
  EXPECT_THROW(ops::causal_conv_cl(x, w, b, &bad, false), Error);
  EXPECT_THROW(ops::causal_conv_cl(x, randn({5, 3, 3}, 1), b, nullptr, false), Error);
}

TEST(T2wPrecision, SplitQkvNormIsSliceThenLayerNorm) {
  const int64_t H = 3, D = 8, I = H * D;
  const Tensor qkv = randn({2, 5, 3 * I}, 21);
  const Tensor qw = randn({D}, 22), qb = randn({D}, 23), kw = randn({D}, 24), kb = randn({D}, 25);
  const std::vector<Tensor> got = ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f);
  ASSERT_EQ(got.size(), 3u);
  auto block = [&](int64_t i) {
    return ops::slice_axis(qkv, 2, i * I, (i + 1) * I).reshape({2, 5, H, D});
  };
  expect_same(got[0], ops::layer_norm(block(0), qw, qb, 1e-5f), "q");
  expect_same(got[1], ops::layer_norm(block(1), kw, kb, 1e-5f), "k");
  expect_same(got[2], block(2), "v");
  // Each head of q is normalised on its own: mean 0 before the affine part.
  const Tensor plain =
      ops::split_qkv_norm(qkv, H, D, Tensor::from_vector(std::vector<float>(D, 1.f), {D}),
                          Tensor::zeros({D}, DType::F32), kw, kb, 1e-5f)[0];
  const std::vector<float> pv = plain.to_f32_vector();
  for (int64_t r = 0; r < 2 * 5 * H; ++r) {
    double m = 0;
    for (int64_t i = 0; i < D; ++i) m += pv[static_cast<size_t>(r * D + i)];
    EXPECT_NEAR(m / D, 0.0, 1e-5) << "head row " << r;
  }
  EXPECT_THROW(ops::split_qkv_norm(randn({2, 5, 3 * I + 1}, 1), H, D, qw, qb, kw, kb, 1e-5f),
               Error);
  EXPECT_THROW(ops::split_qkv_norm(qkv, H, D, randn({D + 1}, 1), qb, kw, kb, 1e-5f), Error);
}

TEST(T2wPrecision, ConvTapsAreTheKernelColumns) {
  const Tensor w = randn({5, 4, 3}, 31);
  const Tensor taps = ops::conv_taps(w);
  ASSERT_EQ(taps.shape(), (Shape{3, 5, 4}));
  const std::vector<float> t = taps.to_f32_vector(), wv = w.to_f32_vector();
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t o = 0; o < 5; ++o)
      for (int64_t c = 0; c < 4; ++c)
        EXPECT_EQ(t[static_cast<size_t>((j * 5 + o) * 4 + c)],
                  wv[static_cast<size_t>((o * 4 + c) * 3 + j)]);
  EXPECT_THROW(ops::conv_taps(randn({5, 4}, 1)), Error);
  // On the CPU the taps change nothing (the reference runs); wrong taps are rejected.
  const Tensor b = randn({5}, 32), x = randn({2, 9, 4}, 33);
  expect_same(ops::causal_conv_cl(x, w, b, nullptr, true, taps),
              ops::causal_conv_cl(x, w, b, nullptr, true), "with taps");
  EXPECT_THROW(ops::causal_conv_cl(x, w, b, nullptr, true, randn({3, 4, 5}, 1)), Error);
}

TEST(T2wPrecision, SplitQkvNormInBf16IsTheF32Rounded) {
  const int64_t H = 2, D = 8, I = H * D;
  const Tensor qkv = randn({2, 3, 3 * I}, 41);
  const Tensor qw = randn({D}, 42), qb = randn({D}, 43), kw = randn({D}, 44), kb = randn({D}, 45);
  const std::vector<Tensor> f = ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f);
  const std::vector<Tensor> h = ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f, DType::BF16);
  ASSERT_EQ(h.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(h[i].dtype(), DType::BF16);
    expect_same(h[i], f[i].to_dtype(DType::BF16), fmt::format("part {}", i));
  }
  EXPECT_THROW(ops::split_qkv_norm(qkv, H, D, qw, qb, kw, kb, 1e-5f, DType::F16), Error);
}

TEST(T2wPrecision, LayerNormMishIsTheTwoOps) {
  const Tensor x = randn({2, 7, 12}, 51), w = randn({12}, 52), b = randn({12}, 53);
  Tensor ref = ops::layer_norm(x, w, b, 1e-5f);
  ops::mish_(ref);
  expect_same(ops::layer_norm_mish(x, w, b, 1e-5f), ref, "layer_norm_mish");
  EXPECT_THROW(ops::layer_norm_mish(x, randn({11}, 1), b, 1e-5f), Error);
  EXPECT_THROW(ops::layer_norm_mish(x, w, Tensor(), 1e-5f), Error);
}

TEST(T2wPrecision, ChunksLastSplitsEveryChunk) {
  const Tensor x = randn({2, 9 * 7}, 9);
  const Tensor all = ops::chunks_last(x, 9);
  ASSERT_EQ(all.shape(), (Shape{9, 2, 7}));
  for (int64_t i = 0; i < 9; ++i)
    expect_same(all.slice_rows(i, i + 1).reshape({2, 7}), ops::chunk_last(x, 9, i),
                fmt::format("chunk {}", i));
  EXPECT_THROW(ops::chunks_last(randn({2, 10}, 1), 3), Error);
  EXPECT_THROW(ops::chunks_last(randn({2, 3, 9}, 1), 3), Error);
}

TEST(T2wPrecision, CounterNormalIsDeterministicIndexedAndStandard) {
  const int64_t n = 1'000'000;
  const std::vector<float> a = ops::counter_normal(42, 0, {n}, Device::cpu()).to_f32_vector();
  EXPECT_EQ(a, ops::counter_normal(42, 0, {n}, Device::cpu()).to_f32_vector());
  const std::vector<float> c = ops::counter_normal(43, 0, {16}, Device::cpu()).to_f32_vector();
  EXPECT_NE(c, std::vector<float>(a.begin(), a.begin() + 16));
  const std::vector<float> w =
      ops::counter_normal(42, 777, {3, 101}, Device::cpu()).to_f32_vector();
  EXPECT_EQ(w, std::vector<float>(a.begin() + 777, a.begin() + 777 + 303)) << "offset window";
  double sum = 0, sq = 0, fourth = 0;
  for (float v : a) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sq += static_cast<double>(v) * v;
    fourth += static_cast<double>(v) * v * v * v;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5e-3);  // standard error 1e-3
  EXPECT_NEAR(var, 1.0, 1e-2);   // standard error 1.4e-3
  EXPECT_NEAR(fourth / n, 3.0, 0.1) << "a normal's fourth moment is 3";
  // Neighbouring counters (a Box-Muller pair, and pairs) are uncorrelated.
  double lag1 = 0, lag2 = 0;
  for (int64_t i = 0; i + 2 < n; ++i) {
    lag1 += static_cast<double>(a[static_cast<size_t>(i)]) * a[static_cast<size_t>(i + 1)];
    lag2 += static_cast<double>(a[static_cast<size_t>(i)]) * a[static_cast<size_t>(i + 2)];
  }
  EXPECT_NEAR(lag1 / n, 0.0, 5e-3);
  EXPECT_NEAR(lag2 / n, 0.0, 5e-3);
  EXPECT_THROW(ops::counter_normal(1, -1, {4}, Device::cpu()), Error);
}

TEST(T2wPrecision, FrameNoiseFastDependsOnTheFrameOnly) {
  const Tensor all = ops::frame_noise_fast(3, 80, 0, 50, Device::cpu());
  ASSERT_EQ(all.shape(), (Shape{80, 50}));
  expect_same(ops::frame_noise_fast(3, 80, 20, 35, Device::cpu()), ops::slice_axis(all, 1, 20, 35),
              "frames 20..35");
  // Column f is counter_normal's elements f*80 .. f*80+79.
  const std::vector<float> v = all.to_f32_vector();
  const std::vector<float> flat =
      ops::counter_normal(3, 0, {50 * 80}, Device::cpu()).to_f32_vector();
  for (int64_t c = 0; c < 80; c += 13)
    for (int64_t f = 0; f < 50; f += 7)
      EXPECT_EQ(v[static_cast<size_t>(c * 50 + f)], flat[static_cast<size_t>(f * 80 + c)]);
  EXPECT_THROW(ops::frame_noise_fast(3, 80, 10, 5, Device::cpu()), Error);
}

// On the CPU the fast mode is the fp32 reference, bit for bit (no TF32, no bf16 there).
TEST(T2wPrecision, FastModeOnTheCpuIsTheReference) {
  Flow flow(data().config, data().weights.fn());
  const Tensor x = golden("dit/x"), mu = golden("dit/mu"), t = golden("dit/t"),
               spks = golden("dit/spks"), cond = golden("dit/cond");
  const Tensor ref = flow.estimator().forward(x, mu, t, spks, cond);
  flow.set_precision(T2wPrecision::Fast);
  EXPECT_EQ(flow.precision(), T2wPrecision::Fast);
  expect_same(flow.estimator().forward(x, mu, t, spks, cond), ref, "DiT, fast on the CPU");
  // And the seeded initial state stays the CPU table (ops::frame_noise) on the CPU.
  const auto prompt = flow_test::golden_ids("flow/prompt_token");
  const auto codes = flow_test::golden_ids("flow/token");
  const Tensor fast =
      flow.inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"), 2);
  flow.set_precision(T2wPrecision::Fp32);
  expect_same(
      fast, flow.inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"), 2),
      "seeded inference, fast vs fp32 on the CPU");
}

}  // namespace
}  // namespace stepaudio
