// The fused encoder ops on the CPU against a double-precision computation of the unfused
// sequence they stand for, their bf16 outputs, BF16 activations into linear, and the argument
// checks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/fused_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

Tensor randn(Shape s, float scale, float mean = 0.0f) {
  static std::mt19937 g(7);
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (float& x : v) x = d(g);
  return Tensor::from_vector(v, std::move(s));
}

double gelu_d(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

// Row-wise LayerNorm of `x` (rows x n) in double.
std::vector<double> layer_norm_d(const std::vector<double>& x, int64_t n, const Tensor& w,
                                 const Tensor& b) {
  const std::vector<float> wv = w.to_f32_vector(), bv = b.to_f32_vector();
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / static_cast<size_t>(n); ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[r * n + i];
    mean /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
    var /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i)
      y[r * n + i] = (x[r * n + i] - mean) / std::sqrt(var + 1e-5) * wv[i] + bv[i];
  }
  return y;
}

double max_err(const std::vector<double>& ref, const Tensor& got) {
  const std::vector<float> g = got.to_f32_vector();
  EXPECT_EQ(g.size(), ref.size());
  double m = 0;
  for (size_t i = 0; i < ref.size() && i < g.size(); ++i) {
    const double d = std::fabs(ref[i] - g[i]) / (1.0 + std::fabs(ref[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

std::vector<double> vals(const Tensor& t) {
  std::vector<double> v;
  for (float f : t.to_f32_vector()) v.push_back(f);
  return v;
}

TEST(FusedOps, LayerNormToF32AndBf16) {
  const int64_t n = 1280;
  Tensor x = randn({3, 5, n}, 2.0f, 0.7f), w = randn({n}, 1.0f), b = randn({n}, 0.5f);
  const std::vector<double> ref = layer_norm_d(vals(x), n, w, b);
  Tensor y = ops::layer_norm_to(x, w, b, 1e-5f, DType::F32);
  EXPECT_EQ(y.dtype(), DType::F32);
  EXPECT_EQ(y.shape(), x.shape());
  EXPECT_LT(max_err(ref, y), 1e-5);
  Tensor yb =
      ops::layer_norm_to(x, w.to_dtype(DType::BF16).to_dtype(DType::F32), b, 1e-5f, DType::BF16);
  EXPECT_EQ(yb.dtype(), DType::BF16);
  EXPECT_LT(max_err(ref, yb), 1e-2);  // w rounded to bf16 and the output rounded to bf16
  EXPECT_GT(max_err(ref, yb), 0.0);   // it really is rounded
}

TEST(FusedOps, AddLayerNormUpdatesResidual) {
  const int64_t n = 96;
  Tensor x = randn({7, n}, 1.0f), r = randn({7, n}, 1.0f), rb = randn({n}, 0.3f);
  Tensor w = randn({n}, 1.0f), b = randn({n}, 0.5f);
  std::vector<double> sum = vals(x);
  const std::vector<double> rv = vals(r), rbv = vals(rb);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += rv[i] + rbv[i % n];
  const std::vector<double> ref = layer_norm_d(sum, n, w, b);
  Tensor xc = x.clone();
  Tensor y = ops::add_layer_norm_(xc, r, rb, w, b, 1e-5f, DType::F32);
  EXPECT_LT(max_err(sum, xc), 1e-6);
  EXPECT_LT(max_err(ref, y), 1e-5);
  // Without the bias.
  Tensor xd = x.clone();
  std::vector<double> sum2 = vals(x);
  for (size_t i = 0; i < sum2.size(); ++i) sum2[i] += rv[i];
  Tensor y2 = ops::add_layer_norm_(xd, r, Tensor(), w, b, 1e-5f, DType::BF16);
  EXPECT_LT(max_err(sum2, xd), 1e-6);
  EXPECT_LT(max_err(layer_norm_d(sum2, n, w, b), y2), 1e-2);
}

TEST(FusedOps, AddResidualAndBiasGelu) {
  const int64_t n = 5120;
  Tensor x = randn({4, n}, 1.0f), r = randn({4, n}, 1.0f), rb = randn({n}, 0.3f);
  std::vector<double> sum = vals(x);
  const std::vector<double> rv = vals(r), rbv = vals(rb);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += rv[i] + rbv[i % n];
  Tensor xc = x.clone();
  ops::add_residual_(xc, r, rb.to_dtype(DType::BF16).to_dtype(DType::F32));
  std::vector<double> sumb = vals(x);
  const std::vector<double> rbb = vals(rb.to_dtype(DType::BF16));
  for (size_t i = 0; i < sumb.size(); ++i) sumb[i] += rv[i] + rbb[i % n];
  EXPECT_LT(max_err(sumb, xc), 1e-6);

  std::vector<double> g(sum.size());
  const std::vector<double> xv = vals(x);
  for (size_t i = 0; i < g.size(); ++i) g[i] = gelu_d(xv[i] + rbv[i % n]);
  EXPECT_LT(max_err(g, ops::bias_gelu(x, rb, DType::F32)), 1e-6);
  Tensor gb = ops::bias_gelu(x, rb, DType::BF16);
  EXPECT_EQ(gb.dtype(), DType::BF16);
  EXPECT_LT(max_err(g, gb), 8e-3);
}

TEST(FusedOps, BiasCast) {
  Tensor x = randn({6, 40}, 1.0f), b = randn({40}, 0.5f);
  std::vector<double> ref = vals(x);
  const std::vector<double> bv = vals(b);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[i % 40];
  EXPECT_LT(max_err(ref, ops::bias_cast(x, b, DType::F32)), 1e-6);
  Tensor y = ops::bias_cast(x, b, DType::BF16);
  EXPECT_EQ(y.dtype(), DType::BF16);
  EXPECT_LT(max_err(ref, y), 4e-3);
  EXPECT_LT(max_err(vals(x), ops::bias_cast(x, Tensor(), DType::BF16)), 4e-3);
}

// The fused q|k|v output cut into three contiguous parts, each bias_cast of its columns.
TEST(FusedOps, BiasCastSplit) {
  Tensor x = randn({2, 5, 36}, 1.0f), b = randn({36}, 0.5f);
  const std::vector<double> xv = vals(x), bv = vals(b);
  for (DType out : {DType::F32, DType::BF16}) {
    const Tensor y = ops::bias_cast_split(x, b, 3, out);
    ASSERT_EQ(y.shape(), (Shape{3, 2, 5, 12}));
    EXPECT_EQ(y.dtype(), out);
    const std::vector<double> yv = vals(y);
    double err = 0;
    for (int64_t p = 0; p < 3; ++p)
      for (int64_t r = 0; r < 10; ++r)
        for (int64_t j = 0; j < 12; ++j) {
          // Relative to the value: bf16 keeps 8 significant bits (rounding error <= 2^-8).
          const size_t src = static_cast<size_t>(r * 36 + p * 12 + j);
          const double ref = xv[src] + bv[src % 36];
          err = std::max(err, std::abs(yv[static_cast<size_t>((p * 10 + r) * 12 + j)] - ref) /
                                  (std::abs(ref) + 1e-30));
        }
    EXPECT_LE(err, out == DType::F32 ? 1e-6 : 1.0 / 256);
  }
  EXPECT_THROW(ops::bias_cast_split(x, b, 5, DType::F32), Error);  // 36 is not 5 parts
}

// BF16 activations into linear mean the same product as their F32 upcast.
TEST(FusedOps, LinearTakesBf16Activations) {
  Tensor x = randn({9, 64}, 1.0f).to_dtype(DType::BF16);
  Tensor w = randn({33, 64}, 0.2f).to_dtype(DType::BF16), b = randn({33}, 0.1f);
  const std::vector<float> a = ops::linear(x, w, b).to_f32_vector();
  const std::vector<float> e = ops::linear(ops::to_f32(x), w, b).to_f32_vector();
  ASSERT_EQ(a.size(), e.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], e[i]) << i;
  EXPECT_THROW(ops::linear(x.to_dtype(DType::F16), w, b), Error);
}

TEST(FusedOps, RejectsBadArguments) {
  Tensor x = randn({2, 8}, 1.0f), w = randn({8}, 1.0f), b = randn({8}, 1.0f);
  EXPECT_THROW(ops::layer_norm_to(x, randn({7}, 1.0f), b, 1e-5f, DType::F32), Error);
  EXPECT_THROW(ops::layer_norm_to(x, w, b, 1e-5f, DType::F16), Error);
  EXPECT_THROW(ops::layer_norm_to(x.to_dtype(DType::BF16), w, b, 1e-5f, DType::F32), Error);
  Tensor xc = x.clone();
  EXPECT_THROW(ops::add_layer_norm_(xc, randn({2, 9}, 1.0f), Tensor(), w, b, 1e-5f, DType::F32),
               Error);
  EXPECT_THROW(ops::add_residual_(xc, randn({3, 8}, 1.0f), b), Error);
  EXPECT_THROW(ops::add_residual_(xc, x, Tensor()), Error);
  EXPECT_THROW(ops::bias_gelu(x, randn({9}, 1.0f), DType::BF16), Error);
  EXPECT_THROW(ops::bias_cast(x, randn({9}, 1.0f), DType::BF16), Error);
  EXPECT_THROW(ops::bias_cast(x, b, DType::I32), Error);
}

}  // namespace
}  // namespace stepaudio
