// The flow's ops on CUDA against the CPU reference on random inputs at the flow's real shapes
// (512 wide, 8 heads x 64, the CFG batch of 2, 200-700 frames), outputs NaN-poisoned. fp32: rel
// L2 <= 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "../ops/gpu_util.h"
#include "ops/act_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using gpu_test::gpu;
using gpu_test::rand_f32;
using gpu_test::rel_l2;

constexpr double kTol = 1e-5;

class T2wFlowOpsCuda : public gpu_test::PoisonedGpu {};

// The encoder's attention: the first stack (T tokens), the up-sampled stack (2T frames), and a
// streaming chunk (T1 queries over T2 cached + new keys).
TEST_F(T2wFlowOpsCuda, RelPosAttention) {
  const int64_t H = 8, D = 64;
  for (auto [B, T1, T2] : {std::tuple{1, 350, 350}, {1, 700, 700}, {1, 56, 206}, {2, 33, 40}}) {
    const Tensor q = rand_f32({B, T1, H, D}), k = rand_f32({B, T2, H, D}),
                 v = rand_f32({B, T2, H, D}), p = rand_f32({2 * T2 - 1, H, D}),
                 u = rand_f32({H, D}, 0.3f), w = rand_f32({H, D}, 0.3f);
    const Tensor want = ops::rel_pos_attention(q, k, v, p, u, w);
    const Tensor got = ops::rel_pos_attention(gpu(q), gpu(k), gpu(v), gpu(p), gpu(u), gpu(w));
    EXPECT_LE(rel_l2(got, want), kTol) << "B " << B << " T1 " << T1 << " T2 " << T2;
  }
}

TEST_F(T2wFlowOpsCuda, TimestepEmbedding) {
  // The cosine schedule's step times (0..1), the CFG batch of 2.
  std::vector<float> ts;
  for (int i = 0; i < 10; ++i) ts.push_back(1.f - std::cos(static_cast<float>(i) / 10.f * 1.5708f));
  const Tensor t = Tensor::from_vector(ts, {10});
  EXPECT_LE(rel_l2(ops::timestep_embedding(gpu(t), 256, 1000.f, 10000.f),
                   ops::timestep_embedding(t, 256, 1000.f, 10000.f)),
            kTol);
}

TEST_F(T2wFlowOpsCuda, ModulatedLayerNormAndGatedAdd) {
  const int64_t B = 2, T = 400, C = 512;
  const Tensor x = rand_f32({B, T, C}, 3.f), shift = rand_f32({B, C}), scale = rand_f32({B, C});
  EXPECT_LE(rel_l2(ops::modulated_layer_norm(gpu(x), gpu(shift), gpu(scale), 1e-6f),
                   ops::modulated_layer_norm(x, shift, scale, 1e-6f)),
            kTol);
  const Tensor y = rand_f32({B, T, C}), gate = rand_f32({B, C});
  Tensor cpu = x.clone(), g = gpu(x);
  ops::gated_add_(cpu, gate, y);
  ops::gated_add_(g, gpu(gate), gpu(y));
  EXPECT_LE(rel_l2(g, cpu), kTol);
}

// The DiT's "gated residual, then the next adaLN" in one kernel (C % 4 == 0 and aligned: one
// warp per row, float4) and the fallback (odd C, a misaligned shift view): x and the result as
// the two CPU ops give them.
TEST_F(T2wFlowOpsCuda, GatedAddThenModulatedLayerNorm) {
  for (auto [B, T, C, misaligned] : {std::tuple{2, 700, 512, false},
                                     {1, 3, 2048, false},
                                     {2, 37, 30, false},
                                     {2, 50, 512, true}}) {
    SCOPED_TRACE(::testing::Message()
                 << B << " x " << T << " x " << C << (misaligned ? " +1" : ""));
    const Tensor x = rand_f32({B, T, C}, 3.f), y = rand_f32({B, T, C}), gate = rand_f32({B, C}),
                 scale = rand_f32({B, C});
    const Tensor shift_big = rand_f32({B * C + 1, 1});
    const Tensor shift =
        shift_big.slice_rows(misaligned ? 1 : 0, B * C + (misaligned ? 1 : 0)).reshape({B, C});
    Tensor cx = x.clone();
    const Tensor ref = ops::gated_add_modulated_ln_(cx, gate, y, shift, scale, 1e-6f);
    // On the CPU it is the two ops.
    Tensor cx2 = x.clone();
    ops::gated_add_(cx2, gate, y);
    EXPECT_EQ(rel_l2(cx, cx2), 0.0);
    EXPECT_EQ(rel_l2(ref, ops::modulated_layer_norm(cx2, shift, scale, 1e-6f)), 0.0);
    Tensor gx = gpu(x);
    const Tensor gshift =
        gpu(shift_big).slice_rows(misaligned ? 1 : 0, B * C + (misaligned ? 1 : 0)).reshape({B, C});
    const Tensor got =
        ops::gated_add_modulated_ln_(gx, gpu(gate), gpu(y), gshift, gpu(scale), 1e-6f);
    EXPECT_TRUE(got.device().is_cuda());
    EXPECT_LE(rel_l2(gx, cx), kTol);
    EXPECT_LE(rel_l2(got, ref), kTol);
    // The plain modulated LayerNorm at the same shapes (the vectorised kernel and the fallback).
    EXPECT_LE(rel_l2(ops::modulated_layer_norm(gpu(x), gshift, gpu(scale), 1e-6f),
                     ops::modulated_layer_norm(x, shift, scale, 1e-6f)),
              kTol);
  }
  Tensor gx = gpu(rand_f32({2, 5, 8}));
  EXPECT_THROW(ops::gated_add_modulated_ln_(gx, gpu(rand_f32({2, 8})), gpu(rand_f32({2, 5, 8})),
                                            gpu(rand_f32({2, 7})), gpu(rand_f32({2, 8})), 1e-6f),
               Error);
}

// The conv block's LayerNorm + Mish in one kernel (float4 rows) and the fallback (odd width, a
// view one float in), against the two CPU ops.
TEST_F(T2wFlowOpsCuda, LayerNormMish) {
  for (auto [R, C, misaligned] : {std::tuple<int64_t, int64_t, bool>{1400, 512, false},
                                  {7, 2048, false},
                                  {74, 30, false},
                                  {100, 512, true}}) {
    SCOPED_TRACE(::testing::Message() << R << " x " << C << (misaligned ? " +1" : ""));
    const int64_t at = misaligned ? 1 : 0;
    const Tensor base = rand_f32({R * C + 1, 1}, 3.f);
    const Tensor xv = base.slice_rows(at, R * C + at).reshape({R, C});
    const Tensor w = rand_f32({C}), b = rand_f32({C});
    Tensor ref = ops::layer_norm(xv, w, b, 1e-5f);
    ops::mish_(ref);
    EXPECT_EQ(rel_l2(ops::layer_norm_mish(xv, w, b, 1e-5f), ref), 0.0);
    const Tensor gx = gpu(base).slice_rows(at, R * C + at).reshape({R, C});
    const Tensor got = ops::layer_norm_mish(gx, gpu(w), gpu(b), 1e-5f);
    EXPECT_TRUE(got.device().is_cuda());
    EXPECT_LE(rel_l2(got, ref), kTol);
  }
}

TEST_F(T2wFlowOpsCuda, PointwiseAtDiTShapes) {
  const Tensor x = rand_f32({2, 400, 2048}, 4.f);
  for (int which = 0; which < 3; ++which) {
    Tensor cpu = x.clone(), g = gpu(x);
    auto f = [&](Tensor& t) {
      if (which == 0) ops::mish_(t);
      if (which == 1) ops::gelu_tanh_(t);
      if (which == 2) ops::silu_(t);
    };
    f(cpu);
    f(g);
    EXPECT_LE(rel_l2(g, cpu), kTol) << which;
  }
  const Tensor y = rand_f32({1, 80, 400});
  Tensor a = rand_f32({1, 80, 400}), ga = gpu(a);
  ops::axpy_(a, 0.123f, y);
  ops::axpy_(ga, 0.123f, gpu(y));
  EXPECT_LE(rel_l2(ga, a), kTol);
}

TEST_F(T2wFlowOpsCuda, L2Normalize) {
  const Tensor x = rand_f32({3, 192});
  EXPECT_LE(rel_l2(ops::l2_normalize(gpu(x)), ops::l2_normalize(x)), kTol);
}

TEST_F(T2wFlowOpsCuda, ConcatSliceChunkRepeat) {
  const Tensor a = rand_f32({1, 80, 300}), b = rand_f32({1, 80, 300}), c = rand_f32({1, 80, 20});
  for (int axis : {0, 1, 2, -1}) {
    const std::vector<Tensor> xs = {a, axis == 2 || axis == -1 ? c : b};
    EXPECT_EQ(rel_l2(ops::concat_axis({gpu(xs[0]), gpu(xs[1])}, axis), ops::concat_axis(xs, axis)),
              0.0)
        << axis;
  }
  const Tensor k = rand_f32({2, 300, 8, 64});
  EXPECT_EQ(rel_l2(ops::slice_axis(gpu(k), 1, 50, 250), ops::slice_axis(k, 1, 50, 250)), 0.0);
  EXPECT_EQ(rel_l2(ops::slice_axis(gpu(k), 0, 1, 2), ops::slice_axis(k, 0, 1, 2)), 0.0);
  EXPECT_EQ(rel_l2(ops::slice_axis(gpu(k), 3, 3, 9), ops::slice_axis(k, 3, 3, 9)), 0.0);
  const Tensor mod = rand_f32({2, 9 * 512});
  for (int64_t i : {0, 4, 8})
    EXPECT_EQ(rel_l2(ops::chunk_last(gpu(mod), 9, i), ops::chunk_last(mod, 9, i)), 0.0) << i;
  const Tensor spk = rand_f32({2, 80});
  EXPECT_EQ(rel_l2(ops::repeat_time(gpu(spk), 333), ops::repeat_time(spk, 333)), 0.0);
}

}  // namespace
}  // namespace stepaudio
