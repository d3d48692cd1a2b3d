// The HiFT vocoder's ops on CUDA against the CPU reference on random inputs at the vocoder's real
// shapes (512 base channels, 80 mels, 100-500 frames; 24 kHz signals of 480 samples per frame),
// outputs NaN-poisoned. fp32 throughout: rel L2 <= 1e-5 unless said.
#include <gtest/gtest.h>

#include <cmath>
#include <span>
#include <tuple>
#include <vector>

#include "../ops/gpu_util.h"
#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/ops.h"
#include "ops/stft_ops.h"
#include "ops/vocoder_ops.h"

namespace stepaudio {
namespace {

using gpu_test::gpu;
using gpu_test::rand_f32;
using gpu_test::rel_l2;

constexpr double kTol = 1e-5;

class T2wHiftOpsCuda : public gpu_test::PoisonedGpu {};

TEST_F(T2wHiftOpsCuda, Activations) {
  const Tensor x = rand_f32({1, 512, 1600}, 4.f);
  struct Case {
    const char* name;
    void (*f)(Tensor&);
  };
  const Case cases[] = {
      {"leaky_relu", [](Tensor& t) { ops::leaky_relu_(t, 0.1f); }},
      {"elu", [](Tensor& t) { ops::elu_(t, 1.f); }},
      {"silu", [](Tensor& t) { ops::silu_(t); }},
      {"mish", [](Tensor& t) { ops::mish_(t); }},
      {"tanh", [](Tensor& t) { ops::tanh_(t); }},
      {"gelu_tanh", [](Tensor& t) { ops::gelu_tanh_(t); }},
      {"exp", [](Tensor& t) { ops::exp_(t); }},
      {"sin", [](Tensor& t) { ops::sin_(t); }},
      {"scale", [](Tensor& t) { ops::scale_(t, 1.f / 3.f); }},
      {"abs", [](Tensor& t) { ops::abs_(t); }},
      {"clamp", [](Tensor& t) { ops::clamp_(t, -0.99f, 0.99f); }},
  };
  for (const Case& c : cases) {
    Tensor cpu = x.clone(), g = gpu(x);
    c.f(cpu);
    c.f(g);
    EXPECT_LE(rel_l2(g, cpu), kTol) << c.name;
  }
  Tensor a = x.clone(), ga = gpu(x);
  const Tensor b = rand_f32(x.shape());
  ops::mul_(a, b);
  ops::mul_(ga, gpu(b));
  EXPECT_LE(rel_l2(ga, a), kTol) << "mul";
}

// The float4 kernels and their scalar fallbacks: lengths that are not a multiple of 4 (a scalar
// tail) and views one float into their storage (not 16-byte aligned), NaN-poisoned around.
TEST_F(T2wHiftOpsCuda, PointwiseVectorAndScalarPaths) {
  for (int64_t n : {int64_t{3}, int64_t{4}, int64_t{4099}, int64_t{700 * 512}}) {
    for (bool shifted : {false, true}) {
      SCOPED_TRACE(::testing::Message() << n << (shifted ? " shifted" : ""));
      const Tensor base = rand_f32({n + 1}, 4.f);
      Tensor cpu = base.clone().slice_rows(shifted ? 1 : 0, n + (shifted ? 1 : 0));
      Tensor g = gpu(base).slice_rows(shifted ? 1 : 0, n + (shifted ? 1 : 0));
      ops::mish_(cpu);
      ops::mish_(g);
      EXPECT_LE(rel_l2(g, cpu), kTol) << "mish";
      ops::gelu_tanh_(cpu);
      ops::gelu_tanh_(g);
      EXPECT_LE(rel_l2(g, cpu), kTol) << "gelu_tanh";
    }
  }
  // Snake at the HiFT's longest rows (10 s at 24 kHz) and with an odd length / offset view.
  for (auto [C, T, shifted] : {std::tuple{int64_t{64}, int64_t{240000}, false},
                               {int64_t{8}, int64_t{1999}, false},
                               {int64_t{8}, int64_t{2000}, true}}) {
    SCOPED_TRACE(::testing::Message()
                 << "snake " << C << " x " << T << (shifted ? " shifted" : ""));
    const int64_t n = C * T, at = shifted ? 1 : 0;
    const Tensor base = rand_f32({n + 1}, 3.f);
    Tensor alpha = rand_f32({C}, 0.5f);
    for (float& v : std::span(alpha.data<float>(), C)) v += 1.f;
    Tensor cpu = base.clone().slice_rows(at, n + at).reshape({1, C, T});
    Tensor g = gpu(base).slice_rows(at, n + at).reshape({1, C, T});
    ops::snake_(cpu, alpha);
    ops::snake_(g, gpu(alpha));
    EXPECT_LE(rel_l2(g, cpu), kTol);
  }
}

TEST_F(T2wHiftOpsCuda, Snake) {
  for (int64_t C : {512, 256, 64}) {
    const Tensor x = rand_f32({1, C, 2000}, 3.f);
    Tensor alpha = rand_f32({C}, 0.5f);
    for (float& v : std::span(alpha.data<float>(), C)) v += 1.f;  // alpha in [0.5, 1.5)
    Tensor cpu = x.clone(), g = gpu(x);
    ops::snake_(cpu, alpha);
    ops::snake_(g, gpu(alpha));
    EXPECT_LE(rel_l2(g, cpu), kTol) << "C " << C;
  }
}

struct ConvCase {
  int64_t B, C_in, C_out, T, K;
  ops::Conv1dOptions o;
  bool with_bias;
};

void check_conv(const ConvCase& c) {
  const Tensor x = rand_f32({c.B, c.C_in, c.T});
  const Tensor w = rand_f32({c.C_out, c.C_in / c.o.groups, c.K}, 0.1f);
  const Tensor b = c.with_bias ? rand_f32({c.C_out}) : Tensor();
  const Tensor want = ops::conv1d_ex(x, w, b, c.o);
  const Tensor got = ops::conv1d_ex(gpu(x), gpu(w), c.with_bias ? gpu(b) : Tensor(), c.o);
  EXPECT_LE(rel_l2(got, want), kTol)
      << "conv " << c.C_in << "->" << c.C_out << " T " << c.T << " K " << c.K << " dil "
      << c.o.dilation << " groups " << c.o.groups << " stride " << c.o.stride;
}

TEST_F(T2wHiftOpsCuda, Conv1dEx) {
  // conv_pre (80 -> 512, K 7), f0 condnet (80/512 -> 512, K 3), resblocks at each stage with
  // dilations 1/3/5, a strided source_down (18 -> 256, K 2u, stride u), conv_post (64 -> 18).
  const ConvCase cases[] = {
      {1, 80, 512, 300, 7, {.pad_left = 3, .pad_right = 3}, true},
      {1, 512, 512, 300, 3, {.pad_left = 1, .pad_right = 1}, true},
      {1, 256, 256, 2400, 11, {.pad_left = 25, .pad_right = 25, .dilation = 5}, true},
      {1, 128, 128, 4000, 7, {.pad_left = 9, .pad_right = 9, .dilation = 3}, true},
      {1, 18, 256, 36001, 30, {.stride = 15, .pad_left = 7, .pad_right = 7}, true},
      {1, 18, 128, 36001, 6, {.stride = 3, .pad_left = 1, .pad_right = 1}, true},
      {1, 18, 64, 36001, 1, {}, true},
      {1, 64, 18, 36001, 7, {.pad_left = 3, .pad_right = 3}, true},
      // The flow's shapes too: a batch of 2, causal and look-ahead padding, no bias.
      {2, 512, 512, 400, 3, {.pad_left = 2}, true},
      {1, 512, 512, 250, 4, {.pad_right = 3}, false},
      // Groups and depthwise (not in the model, but the op takes them).
      {2, 64, 128, 300, 5, {.pad_left = 2, .pad_right = 2, .groups = 4}, true},
      {2, 64, 64, 300, 5, {.pad_left = 4, .dilation = 2, .groups = 64}, true},
      {2, 32, 64, 300, 3, {.stride = 2, .pad_right = 1, .groups = 32}, false},
  };
  for (const ConvCase& c : cases) check_conv(c);
}

TEST_F(T2wHiftOpsCuda, Conv1dExBf16Weights) {
  const Tensor x = rand_f32({1, 256, 500});
  const Tensor w = gpu_test::rand_bf16({256, 256, 3}, 0.1f);
  const Tensor b = rand_f32({256});
  ops::Conv1dOptions o{.pad_left = 1, .pad_right = 1};
  EXPECT_LE(rel_l2(ops::conv1d_ex(gpu(x), gpu(w), gpu(b), o), ops::conv1d_ex(x, w, b, o)), kTol);
}

TEST_F(T2wHiftOpsCuda, ConvTranspose1d) {
  struct Case {
    int64_t C_in, C_out, T, K, stride, pad;
  };
  // The three HiFT upsampling stages (rates 8, 5, 3; kernels 16, 11, 7) at 300 mel frames, and
  // odd cases (stride > K, no padding).
  const Case cases[] = {{512, 256, 300, 16, 8, 4},
                        {256, 128, 2400, 11, 5, 3},
                        {128, 64, 12000, 7, 3, 2},
                        {16, 8, 50, 3, 5, 0},
                        {8, 4, 33, 4, 1, 1}};
  for (const Case& c : cases)
    for (bool bias : {true, false}) {
      const Tensor x = rand_f32({2, c.C_in, c.T});
      const Tensor w = rand_f32({c.C_in, c.C_out, c.K}, 0.1f);
      const Tensor b = bias ? rand_f32({c.C_out}) : Tensor();
      const Tensor want = ops::conv_transpose1d(x, w, b, c.stride, c.pad);
      const Tensor got =
          ops::conv_transpose1d(gpu(x), gpu(w), bias ? gpu(b) : Tensor(), c.stride, c.pad);
      EXPECT_LE(rel_l2(got, want), kTol) << c.C_in << "->" << c.C_out << " K " << c.K;
    }
}

TEST_F(T2wHiftOpsCuda, PadAndUpsample) {
  const Tensor x = rand_f32({2, 64, 3001});
  for (auto mode : {ops::PadMode::Zero, ops::PadMode::Reflect, ops::PadMode::Replicate})
    for (auto [l, r] : {std::pair{1, 0}, {0, 3}, {5, 7}, {0, 0}}) {
      EXPECT_EQ(rel_l2(ops::pad_time(gpu(x), l, r, mode), ops::pad_time(x, l, r, mode)), 0.0)
          << static_cast<int>(mode) << " " << l << "/" << r;
    }
  const Tensor u = rand_f32({1, 512, 250});
  EXPECT_EQ(rel_l2(ops::upsample_nearest_time(gpu(u), 2), ops::upsample_nearest_time(u, 2)), 0.0);
  EXPECT_EQ(rel_l2(ops::upsample_nearest_time(gpu(u), 3), ops::upsample_nearest_time(u, 3)), 0.0);
}

TEST_F(T2wHiftOpsCuda, StftAndIstft) {
  for (int64_t F : {100, 500}) {
    const Tensor x = rand_f32({1, 480 * F}, 0.5f);
    const Tensor spec = ops::stft_small(x, 16, 4);
    EXPECT_LE(rel_l2(ops::stft_small(gpu(x), 16, 4), spec), kTol) << "stft, frames " << F;
    const int64_t frames = 120 * F + 1;
    const Tensor mag = rand_f32({1, 9, frames}, 2.f), phase = rand_f32({1, 9, frames}, 3.f);
    EXPECT_LE(
        rel_l2(ops::istft_small(gpu(mag), gpu(phase), 16, 4), ops::istft_small(mag, phase, 16, 4)),
        kTol)
        << "istft, frames " << F;
  }
  // Batch of 2 and another size.
  const Tensor x = rand_f32({2, 1000});
  EXPECT_LE(rel_l2(ops::stft_small(gpu(x), 8, 2), ops::stft_small(x, 8, 2)), kTol);
}

// f0 tracks with voiced stretches (80-400 Hz) and unvoiced frames (0 Hz, or just under the
// threshold), over 100-500 frames; with and without the random draws.
TEST_F(T2wHiftOpsCuda, NsfSines) {
  for (int64_t F : {100, 500}) {
    Tensor f0 = Tensor::empty({F}, DType::F32);
    gpu_test::Rng r(F);
    for (int64_t i = 0; i < F; ++i) {
      const float u = r.uniform();
      f0.data<float>()[i] = (i / 40) % 3 == 2 ? (u > 0 ? 0.f : 9.5f) : 240.f + 160.f * u;
    }
    const int64_t dim = 9, N = 480 * F;
    Tensor ini = rand_f32({dim}, 0.5f);
    for (float& v : std::span(ini.data<float>(), dim)) v += 0.5f;
    const Tensor noise = rand_f32({N, dim});
    ops::NsfOptions o;
    const Tensor want = ops::nsf_sines(f0, dim, o, ini, noise);
    const Tensor got = ops::nsf_sines(gpu(f0), dim, o, gpu(ini), gpu(noise));
    EXPECT_LE(rel_l2(got, want), kTol) << "frames " << F;
    // Sample by sample too: a phase that drifted by an ulp would show here first.
    const auto a = got.to_f32_vector(), b = want.to_f32_vector();
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    EXPECT_LE(worst, 1e-5) << "frames " << F;
    EXPECT_LE(rel_l2(ops::nsf_sines(gpu(f0), dim, o, Tensor(), Tensor()),
                     ops::nsf_sines(f0, dim, o, Tensor(), Tensor())),
              kTol);
  }
}

TEST_F(T2wHiftOpsCuda, CopiesAndCrossfade) {
  const Tensor a = rand_f32({80, 8}), b = rand_f32({80, 25});
  EXPECT_EQ(rel_l2(ops::concat_time(gpu(a), gpu(b)), ops::concat_time(a, b)), 0.0);
  EXPECT_EQ(rel_l2(ops::concat_time(gpu(Tensor::empty({80, 0}, DType::F32)), gpu(b)), b), 0.0);
  EXPECT_EQ(rel_l2(ops::slice_time(gpu(b), 17, 25), ops::slice_time(b, 17, 25)), 0.0);
  const Tensor head = rand_f32({3840}), tail = rand_f32({3840});
  EXPECT_LE(
      rel_l2(ops::hamming_crossfade(gpu(head), gpu(tail)), ops::hamming_crossfade(head, tail)),
      kTol);
  Tensor dst = gpu(rand_f32({12000}));
  Tensor part = dst.slice_rows(0, 3840);
  ops::copy_(part, gpu(head));
  EXPECT_EQ(rel_l2(dst.slice_rows(0, 3840), head), 0.0);
}

TEST_F(T2wHiftOpsCuda, MixedDevicesFail) {
  Tensor x = gpu(rand_f32({1, 4, 10}));
  const Tensor alpha = rand_f32({4});
  EXPECT_THROW(ops::snake_(x, alpha), Error);
  EXPECT_THROW(ops::conv1d_ex(x, rand_f32({4, 4, 3}), Tensor(), {}), Error);
}

}  // namespace
}  // namespace stepaudio
