// Every op on random inputs against a naive double-precision reference (small shapes, several
// weight dtypes, both the streaming and the blocked GEMM paths).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/ops.h"

namespace stepaudio {
namespace {

std::mt19937& rng() {
  static std::mt19937 g(42);
  return g;
}

Tensor randn(Shape s, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (float& x : v) x = d(rng());
  return Tensor::from_vector(v, std::move(s));
}

// Round-trips through `dt` so the reference sees exactly the values the kernel reads.
Tensor as(const Tensor& t, DType dt) { return t.to_dtype(dt); }
std::vector<double> vals(const Tensor& t) {
  std::vector<double> out;
  for (float f : t.to_f32_vector()) out.push_back(f);
  return out;
}

double max_rel(const std::vector<double>& ref, const Tensor& got) {
  const std::vector<float> g = got.to_f32_vector();
  EXPECT_EQ(g.size(), ref.size());
  double m = 0;
  for (size_t i = 0; i < ref.size() && i < g.size(); ++i) {
    const double d = std::fabs(ref[i] - g[i]) / (1.0 + std::fabs(ref[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

class LinearTest : public ::testing::TestWithParam<std::tuple<DType, int64_t>> {};

TEST_P(LinearTest, MatchesDouble) {
  const auto [dt, M] = GetParam();
  const int64_t K = 77, N = 53;  // odd sizes exercise the vector tails
  Tensor x = randn({M, K});
  Tensor w = as(randn({N, K}, 0.2f), dt);
  Tensor b = as(randn({N}), dt);
  Tensor y = ops::linear(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{M, N}));
  const auto xv = vals(x), wv = vals(w), bv = vals(b);
  std::vector<double> ref(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = bv[static_cast<size_t>(n)];
      for (int64_t k = 0; k < K; ++k)
        s += xv[static_cast<size_t>(m * K + k)] * wv[static_cast<size_t>(n * K + k)];
      ref[static_cast<size_t>(m * N + n)] = s;
    }
  EXPECT_LE(max_rel(ref, y), 2e-6);
  // No bias.
  Tensor y0 = ops::linear(x, w);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      ref[static_cast<size_t>(m * N + n)] -= bv[static_cast<size_t>(n)];
  EXPECT_LE(max_rel(ref, y0), 2e-6);
}

INSTANTIATE_TEST_SUITE_P(DTypesAndRows, LinearTest,
                         ::testing::Combine(::testing::Values(DType::F32, DType::BF16, DType::F16),
                                            ::testing::Values(1, 3, 4, 5, 40)));

TEST(Linear, ManyWeightBlocks) {
  // N large enough for several converted weight blocks of the many-rows (sgemm) path.
  const int64_t M = 6, K = 16, N = 600000;
  Tensor x = randn({M, K});
  Tensor w = as(randn({N, K}, 0.2f), DType::BF16);
  Tensor y = ops::linear(x, w);
  const auto xv = vals(x);
  const std::vector<float> wv = w.to_f32_vector();
  std::vector<double> ref(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += xv[static_cast<size_t>(m * K + k)] * wv[static_cast<size_t>(n * K + k)];
      ref[static_cast<size_t>(m * N + n)] = s;
    }
  EXPECT_LE(max_rel(ref, y), 2e-6);
}

TEST(Linear, BatchedLeadingDimsAndErrors) {
  Tensor x = randn({2, 3, 16});
  Tensor w = randn({8, 16});
  Tensor y = ops::linear(x, w);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 8}));
  EXPECT_LE(max_rel(vals(ops::linear(x.reshape({6, 16}), w)), y), 0.0);
  EXPECT_THROW(ops::linear(x, randn({8, 15})), Error);
  EXPECT_THROW(ops::linear(x, w, randn({7})), Error);
  EXPECT_THROW(ops::linear(x.to_dtype(DType::F16), w), Error);  // F32 or BF16 activations only
}

TEST(Conv1d, MatchesDouble) {
  for (int64_t stride : {1, 2}) {
    for (int64_t T : {1, 2, 7, 10}) {
      SCOPED_TRACE(fmt::format("stride {} T {}", stride, T));
      const int64_t B = 2, Ci = 5, Co = 6, K = 3, P = 1;
      Tensor x = randn({B, Ci, T});
      Tensor w = as(randn({Co, Ci, K}, 0.3f), DType::BF16);
      Tensor b = randn({Co});
      Tensor y = ops::conv1d(x, w, b, stride, P);
      const int64_t To = (T + 2 * P - K) / stride + 1;
      ASSERT_EQ(y.shape(), (Shape{B, Co, To}));
      const auto xv = vals(x), wv = vals(w), bv = vals(b);
      std::vector<double> ref;
      for (int64_t n = 0; n < B; ++n)
        for (int64_t o = 0; o < Co; ++o)
          for (int64_t t = 0; t < To; ++t) {
            double s = bv[static_cast<size_t>(o)];
            for (int64_t c = 0; c < Ci; ++c)
              for (int64_t k = 0; k < K; ++k) {
                const int64_t src = t * stride - P + k;
                if (src >= 0 && src < T)
                  s += wv[static_cast<size_t>((o * Ci + c) * K + k)] *
                       xv[static_cast<size_t>((n * Ci + c) * T + src)];
              }
            ref.push_back(s);
          }
      EXPECT_LE(max_rel(ref, y), 2e-6);
    }
  }
}

TEST(Norms, LayerNormAndRmsNorm) {
  const int64_t R = 5, N = 37;
  Tensor x = randn({R, N}, 3.0f);
  Tensor w = randn({N}), b = as(randn({N}), DType::BF16);
  const auto xv = vals(x), wv = vals(w), bv = vals(b);
  std::vector<double> ln, rms;
  for (int64_t r = 0; r < R; ++r) {
    double mean = 0, ss = 0, var = 0;
    for (int64_t i = 0; i < N; ++i)
      mean += xv[static_cast<size_t>(r * N + i)],
          ss += xv[static_cast<size_t>(r * N + i)] * xv[static_cast<size_t>(r * N + i)];
    mean /= N;
    for (int64_t i = 0; i < N; ++i) var += std::pow(xv[static_cast<size_t>(r * N + i)] - mean, 2);
    var /= N;
    for (int64_t i = 0; i < N; ++i) {
      const double v = xv[static_cast<size_t>(r * N + i)];
      ln.push_back((v - mean) / std::sqrt(var + 1e-5) * wv[static_cast<size_t>(i)] +
                   bv[static_cast<size_t>(i)]);
      rms.push_back(v / std::sqrt(ss / N + 1e-6) * wv[static_cast<size_t>(i)]);
    }
  }
  EXPECT_LE(max_rel(ln, ops::layer_norm(x, w, b, 1e-5f)), 2e-6);
  EXPECT_LE(max_rel(rms, ops::rms_norm(x, w, 1e-6f)), 2e-6);
  EXPECT_THROW(ops::rms_norm(x, randn({N + 1}), 1e-6f), Error);
}

TEST(Activations, GeluReluSiluMulAdd) {
  Tensor x = randn({3, 41}, 3.0f), u = randn({3, 41});
  const auto xv = vals(x), uv = vals(u);
  std::vector<double> g, r, s, a;
  for (size_t i = 0; i < xv.size(); ++i) {
    g.push_back(0.5 * xv[i] * (1 + std::erf(xv[i] / std::sqrt(2.0))));
    r.push_back(std::max(0.0, xv[i]));
    s.push_back(xv[i] / (1 + std::exp(-xv[i])) * uv[i]);
    a.push_back(xv[i] + uv[i % 41]);
  }
  EXPECT_LE(max_rel(g, ops::gelu(x)), 1e-6);
  EXPECT_LE(max_rel(r, ops::relu(x)), 0.0);
  EXPECT_LE(max_rel(s, ops::silu_mul(x, u)), 1e-6);
  Tensor row = u.slice_rows(0, 1).reshape({41});
  EXPECT_LE(max_rel(a, ops::add(x, row)), 1e-7);
  EXPECT_LE(max_rel(a, ops::add(x, row.to_dtype(DType::BF16))), 1e-2);  // bf16-rounded operand
  EXPECT_THROW(ops::add(x, randn({40})), Error);
  EXPECT_THROW(ops::silu_mul(x, randn({3, 40})), Error);
}

TEST(Rope, NeoxRotateHalfAtOffset) {
  const int64_t L = 4, H = 3, D = 8, start = 1000;
  const double theta = 1e6;
  Tensor x = randn({L, H, D});
  const auto xv = vals(x);
  Tensor y = x.clone();
  ops::rope_(y, start, theta);
  std::vector<double> ref(xv.size());
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        const double ang = static_cast<double>(start + l) / std::pow(theta, 2.0 * i / D);
        const size_t base = static_cast<size_t>((l * H + h) * D);
        const double a = xv[base + i], b = xv[base + i + D / 2];
        ref[base + i] = a * std::cos(ang) - b * std::sin(ang);
        ref[base + i + D / 2] = b * std::cos(ang) + a * std::sin(ang);
      }
  // The angle is formed in f32 as HF does (pos * inv_freq), which costs ~1e-4 rad at pos 1000.
  EXPECT_LE(max_rel(ref, y), 5e-4);
  // Position 0 is the identity; rope over rows [0, L) equals rope row by row at each offset.
  Tensor z = x.clone();
  ops::rope_(z, 0, theta);
  Tensor z1 = x.slice_rows(1, 2).clone();
  ops::rope_(z1, 1, theta);
  EXPECT_EQ(z.slice_rows(1, 2).to_f32_vector(), z1.to_f32_vector());
  EXPECT_EQ(z.slice_rows(0, 1).to_f32_vector(), x.slice_rows(0, 1).to_f32_vector());
}

void attention_ref(const Tensor& q, const Tensor& k, const Tensor& v,
                   const ops::AttentionOptions& o, std::vector<double>& out) {
  const int64_t B = q.dim(0), Lq = q.dim(1), H = q.dim(2), D = q.dim(3), Lk = k.dim(1),
                Hkv = k.dim(2);
  const auto qv = vals(q), kv = vals(k), vv = vals(v);
  const std::vector<double> bias = o.key_bias.defined() ? vals(o.key_bias) : std::vector<double>();
  out.assign(qv.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t kh = h / (H / Hkv);
        std::vector<double> s;
        double mx = -INFINITY;
        const int64_t n = o.causal ? std::min(Lk, o.q_offset + i + 1) : Lk;
        for (int64_t j = 0; j < n; ++j) {
          double d = 0;
          for (int64_t c = 0; c < D; ++c)
            d += qv[static_cast<size_t>(((b * Lq + i) * H + h) * D + c)] *
                 kv[static_cast<size_t>(((b * Lk + j) * Hkv + kh) * D + c)];
          d = d * o.scale + (bias.empty() ? 0.0 : bias[static_cast<size_t>(b * Lk + j)]);
          s.push_back(d);
          mx = std::max(mx, d);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j < n; ++j)
          for (int64_t c = 0; c < D; ++c)
            out[static_cast<size_t>(((b * Lq + i) * H + h) * D + c)] +=
                s[static_cast<size_t>(j)] / sum *
                vv[static_cast<size_t>(((b * Lk + j) * Hkv + kh) * D + c)];
      }
}

TEST(Attention, BidirectionalWithKeyBias) {
  for (int64_t Lq : {3, 37}) {  // both the small-query and the sgemm paths
    SCOPED_TRACE(Lq);
    const int64_t B = 2, H = 4, D = 16;
    Tensor q = randn({B, Lq, H, D}), k = randn({B, Lq, H, D}), v = randn({B, Lq, H, D});
    ops::AttentionOptions o;
    o.scale = 0.25f;
    o.key_bias = Tensor::zeros({B, Lq}, DType::F32);
    for (int64_t j = Lq - 2; j < Lq; ++j) o.key_bias.data<float>()[Lq + j] = -1e10f;  // batch 1
    std::vector<double> ref;
    attention_ref(q, k, v, o, ref);
    EXPECT_LE(max_rel(ref, ops::attention(q, k, v, o)), 2e-6);
  }
}

TEST(Attention, CausalGqaWithCacheOffset) {
  for (int64_t Lq : {1, 2, 9, 300}) {
    SCOPED_TRACE(Lq);
    const int64_t off = 5, Lk = off + Lq, H = 6, Hkv = 2, D = 8;
    Tensor q = randn({1, Lq, H, D}), k = randn({1, Lk, Hkv, D}), v = randn({1, Lk, Hkv, D});
    ops::AttentionOptions o;
    o.scale = 1.0f / std::sqrt(8.0f);
    o.causal = true;
    o.q_offset = off;
    std::vector<double> ref;
    attention_ref(q, k, v, o, ref);
    EXPECT_LE(max_rel(ref, ops::attention(q, k, v, o)), 2e-6);
  }
  Tensor q = randn({1, 2, 6, 8});
  EXPECT_THROW(ops::attention(q, randn({1, 3, 4, 8}), randn({1, 3, 4, 8}), {}), Error);  // 6 % 4
  EXPECT_THROW(ops::attention(q, randn({1, 3, 2, 8}), randn({1, 4, 2, 8}), {}), Error);  // k != v
}

TEST(Embedding, GatherBf16RowsAndRejectBadIds) {
  Tensor table = as(randn({10, 6}), DType::BF16);
  const int32_t ids[] = {3, 0, 9, 3};
  Tensor y = ops::embedding(table, ids);
  ASSERT_EQ(y.shape(), (Shape{4, 6}));
  const auto tv = vals(table);
  std::vector<double> ref;
  for (int32_t id : ids)
    for (int64_t c = 0; c < 6; ++c) ref.push_back(tv[static_cast<size_t>(id * 6 + c)]);
  EXPECT_LE(max_rel(ref, y), 0.0);
  const int32_t bad[] = {10};
  EXPECT_THROW(ops::embedding(table, bad), Error);
}

TEST(Pool, AvgPoolFloorAndTranspose) {
  Tensor x = randn({2, 5, 3});
  Tensor y = ops::avg_pool_time(x);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 3}));
  const auto xv = vals(x);
  std::vector<double> ref;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t c = 0; c < 3; ++c)
        ref.push_back((xv[static_cast<size_t>((b * 5 + 2 * t) * 3 + c)] +
                       xv[static_cast<size_t>((b * 5 + 2 * t + 1) * 3 + c)]) /
                      2);
  EXPECT_LE(max_rel(ref, y), 1e-7);
  Tensor tr = ops::transpose_last2(x);
  ASSERT_EQ(tr.shape(), (Shape{2, 3, 5}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_EQ(tr.data<float>()[(b * 3 + c) * 5 + t], x.data<float>()[(b * 5 + t) * 3 + c]);
}

}  // namespace
}  // namespace stepaudio
