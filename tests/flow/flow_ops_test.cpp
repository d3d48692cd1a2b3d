#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/flow_ops.h"

namespace stepaudio {
namespace {

Tensor randn(Shape s, uint64_t seed, float sd = 1.f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (auto& x : v) x = d(g);
  return Tensor::from_vector(v, s);
}

// WeNet's RelPositionMultiHeadedAttention core written out literally: full bd matrix, rel_shift
// by zero-pad / reshape / drop-row / reshape / keep T2 columns, scores / sqrt(d), softmax.
std::vector<float> reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                             const Tensor& u, const Tensor& w) {
  const int64_t B = q.dim(0), T1 = q.dim(1), H = q.dim(2), D = q.dim(3), T2 = k.dim(1);
  const int64_t P = 2 * T2 - 1;
  const float *Q = q.data<float>(), *K = k.data<float>(), *V = v.data<float>(),
              *Pp = p.data<float>(), *U = u.data<float>(), *W = w.data<float>();
  std::vector<float> out(static_cast<size_t>(q.numel()));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> bd(static_cast<size_t>(T1 * P));
      for (int64_t i = 0; i < T1; ++i)
        for (int64_t j = 0; j < P; ++j) {
          double s = 0;
          for (int64_t c = 0; c < D; ++c)
            s += (Q[((b * T1 + i) * H + h) * D + c] + W[h * D + c]) * Pp[(j * H + h) * D + c];
          bd[static_cast<size_t>(i * P + j)] = s;
        }
      // zero-pad one column on the left: [T1, P+1], flat; view as [P+1, T1]; drop the first
      // row (T1 values); view the rest as [T1, P]; keep columns < T2.
      std::vector<double> padded;
      for (int64_t i = 0; i < T1; ++i) {
        padded.push_back(0);
        for (int64_t j = 0; j < P; ++j) padded.push_back(bd[static_cast<size_t>(i * P + j)]);
      }
      std::vector<double> shifted(padded.begin() + T1, padded.end());
      for (int64_t i = 0; i < T1; ++i) {
        std::vector<double> s(static_cast<size_t>(T2));
        double mx = -1e300;
        for (int64_t j = 0; j < T2; ++j) {
          double ac = 0;
          for (int64_t c = 0; c < D; ++c)
            ac += (Q[((b * T1 + i) * H + h) * D + c] + U[h * D + c]) *
                  K[((b * T2 + j) * H + h) * D + c];
          s[static_cast<size_t>(j)] =
              (ac + shifted[static_cast<size_t>(i * P + j)]) / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (auto& x : s) sum += (x = std::exp(x - mx));
        for (int64_t c = 0; c < D; ++c) {
          double o = 0;
          for (int64_t j = 0; j < T2; ++j)
            o += s[static_cast<size_t>(j)] / sum * V[((b * T2 + j) * H + h) * D + c];
          out[static_cast<size_t>(((b * T1 + i) * H + h) * D + c)] = static_cast<float>(o);
        }
      }
    }
  return out;
}

void check_rel_attention(int64_t B, int64_t T1, int64_t T2, int64_t H, int64_t D) {
  const Tensor q = randn({B, T1, H, D}, 1), k = randn({B, T2, H, D}, 2),
               v = randn({B, T2, H, D}, 3);
  const Tensor p = randn({2 * T2 - 1, H, D}, 4), u = randn({H, D}, 5, 0.1f),
               w = randn({H, D}, 6, 0.1f);
  const auto got = ops::rel_pos_attention(q, k, v, p, u, w).to_f32_vector();
  const auto want = reference(q, k, v, p, u, w);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 2e-5) << "B " << B << " T1 " << T1 << " T2 " << T2 << " at " << i;
}

TEST(FlowOps, RelPosAttentionMatchesWeNetRelShift) {
  check_rel_attention(1, 7, 7, 2, 8);      // offline
  check_rel_attention(2, 5, 12, 3, 16);    // queries after 7 cached frames
  check_rel_attention(1, 300, 300, 2, 8);  // several query blocks
  check_rel_attention(1, 130, 200, 1, 4);  // blocks with a cache
}

TEST(FlowOps, RelPosAttentionRejectsBadShapes) {
  const Tensor q = randn({1, 4, 2, 8}, 1), k = randn({1, 4, 2, 8}, 2), u = randn({2, 8}, 3);
  EXPECT_THROW(ops::rel_pos_attention(q, k, k, randn({6, 2, 8}, 4), u, u), Error);
  EXPECT_THROW(ops::rel_pos_attention(randn({1, 5, 2, 8}, 1), k, k, randn({7, 2, 8}, 4), u, u),
               Error);
  EXPECT_THROW(ops::rel_pos_attention(q, k, k, randn({7, 2, 8}, 4), randn({2, 4}, 5), u), Error);
}

TEST(FlowOps, RelPosTable) {
  const Tensor t = ops::rel_pos_table(5, 6);
  ASSERT_EQ(t.shape(), (Shape{9, 6}));
  const auto v = t.to_f32_vector();
  for (int64_t r = 0; r < 9; ++r)
    for (int64_t k = 0; k < 3; ++k) {
      const double pos = 4 - r, wk = std::exp(-2.0 * k * std::log(10000.0) / 6);
      EXPECT_NEAR(v[static_cast<size_t>(r * 6 + 2 * k)], std::sin(pos * wk), 1e-6);
      EXPECT_NEAR(v[static_cast<size_t>(r * 6 + 2 * k + 1)], std::cos(pos * wk), 1e-6);
    }
  EXPECT_THROW(ops::rel_pos_table(5, 7), Error);
}

TEST(FlowOps, ModulatedLayerNormAndGatedAdd) {
  const Tensor x = randn({2, 3, 16}, 1, 3.f), shift = randn({2, 16}, 2), scale = randn({2, 16}, 3);
  const auto y = ops::modulated_layer_norm(x, shift, scale, 1e-6f).to_f32_vector();
  const auto xv = x.to_f32_vector(), sh = shift.to_f32_vector(), sc = scale.to_f32_vector();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t) {
      const float* r = xv.data() + (b * 3 + t) * 16;
      double m = 0, var = 0;
      for (int c = 0; c < 16; ++c) m += r[c];
      m /= 16;
      for (int c = 0; c < 16; ++c) var += (r[c] - m) * (r[c] - m);
      var /= 16;
      for (int c = 0; c < 16; ++c) {
        const double want =
            (r[c] - m) / std::sqrt(var + 1e-6) * (1 + sc[b * 16 + c]) + sh[b * 16 + c];
        EXPECT_NEAR(y[static_cast<size_t>((b * 3 + t) * 16 + c)], want, 1e-5);
      }
    }
  Tensor acc = x.clone();
  const Tensor gate = randn({2, 16}, 4), add = randn({2, 3, 16}, 5);
  ops::gated_add_(acc, gate, add);
  const auto a = acc.to_f32_vector(), g = gate.to_f32_vector(), d = add.to_f32_vector();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_FLOAT_EQ(a[i], xv[i] + g[(i / 48) * 16 + i % 16] * d[i]);
  EXPECT_THROW(ops::gated_add_(acc, randn({1, 16}, 6), add), Error);
  EXPECT_THROW(ops::modulated_layer_norm(x, shift, randn({2, 8}, 7), 1e-6f), Error);
}

TEST(FlowOps, ConcatSliceChunkRepeat) {
  const Tensor a = randn({2, 3, 4}, 1), b = randn({2, 5, 4}, 2);
  const Tensor c = ops::concat_axis({a, b}, 1);
  ASSERT_EQ(c.shape(), (Shape{2, 8, 4}));
  const auto cv = c.to_f32_vector(), av = a.to_f32_vector(), bv = b.to_f32_vector();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 8; ++t)
      for (int64_t j = 0; j < 4; ++j)
        EXPECT_EQ(cv[static_cast<size_t>((i * 8 + t) * 4 + j)],
                  t < 3 ? av[static_cast<size_t>((i * 3 + t) * 4 + j)]
                        : bv[static_cast<size_t>((i * 5 + t - 3) * 4 + j)]);
  EXPECT_EQ(ops::slice_axis(c, 1, 3, 8).to_f32_vector(), bv);
  EXPECT_EQ(ops::slice_axis(c, -2, 0, 3).to_f32_vector(), av);
  EXPECT_EQ(ops::concat_axis({a, a}, 0).shape(), (Shape{4, 3, 4}));
  EXPECT_EQ(ops::chunk_last(ops::concat_axis({a, b}, 1).reshape({2, 32}), 8, 3).to_f32_vector(),
            ops::slice_axis(c.reshape({2, 32}), 1, 12, 16).to_f32_vector());
  EXPECT_THROW(ops::concat_axis({a, b}, 2), Error);
  EXPECT_THROW(ops::slice_axis(a, 1, 2, 4), Error);
  EXPECT_THROW(ops::chunk_last(a, 3, 0), Error);
  const Tensor r = ops::repeat_time(Tensor::from_vector({1, 2, 3, 4}, {2, 2}), 3);
  EXPECT_EQ(r.to_f32_vector(), (std::vector<float>{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4}));
}

TEST(FlowOps, L2NormalizeAndTimestepEmbedding) {
  const auto n = ops::l2_normalize(Tensor::from_vector({3, 4, 0, 0}, {2, 2})).to_f32_vector();
  EXPECT_EQ(n, (std::vector<float>{0.6f, 0.8f, 0, 0}));  // a zero row stays zero (eps)
  const auto e = ops::timestep_embedding(Tensor::from_vector({0.25f}, {1}), 8, 1000.f, 10000.f)
                     .to_f32_vector();
  for (int i = 0; i < 4; ++i) {
    const double a = 250.0 * std::exp(-std::log(10000.0) * i / 4);
    EXPECT_NEAR(e[static_cast<size_t>(i)], std::cos(a), 1e-4);
    EXPECT_NEAR(e[static_cast<size_t>(4 + i)], std::sin(a), 1e-4);
  }
}

TEST(FlowOps, FrameNoiseIsFrameIndexedAndStandardNormal) {
  const Tensor all = ops::frame_noise(7, 80, 0, 400);
  const Tensor part = ops::frame_noise(7, 80, 150, 230);
  EXPECT_EQ(part.to_f32_vector(), ops::slice_axis(all, 1, 150, 230).to_f32_vector());
  EXPECT_NE(ops::frame_noise(8, 80, 0, 400).to_f32_vector(), all.to_f32_vector());
  const auto v = all.to_f32_vector();
  double m = 0, sq = 0;
  for (float x : v) m += x;
  m /= static_cast<double>(v.size());
  for (float x : v) sq += (x - m) * (x - m);
  const double sd = std::sqrt(sq / static_cast<double>(v.size()));
  EXPECT_NEAR(m, 0.0, 0.02);  // 32000 draws: the mean's standard error is 0.0056
  EXPECT_NEAR(sd, 1.0, 0.02);
}

TEST(FlowOps, Axpy) {
  Tensor y = Tensor::from_vector({1, 2, 3}, {3});
  ops::axpy_(y, 2.f, Tensor::from_vector({1, 1, -1}, {3}));
  EXPECT_EQ(y.to_f32_vector(), (std::vector<float>{3, 4, 1}));
  EXPECT_THROW(ops::axpy_(y, 1.f, Tensor::from_vector({1, 1}, {2})), Error);
}

}  // namespace
}  // namespace stepaudio
