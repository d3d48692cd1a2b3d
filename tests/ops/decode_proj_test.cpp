// The fused decode projections on the CPU (rms_norm_linear, linear_add_, swiglu_linear_add_)
// against a plain double-precision evaluation of their definitions, and their argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/decode_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

Tensor rand_f32(Shape shape, float scale, uint32_t seed) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  uint32_t s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data<float>()[i] = scale * (static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
  return t;
}

// y[r, n] = sum_k h[r, k] w[n, k] (+ b[n]) in double; w as F32.
std::vector<double> product(const std::vector<double>& h, int64_t rows, int64_t K, const Tensor& w,
                            const Tensor& b) {
  const std::vector<float> wf = w.to_f32_vector();
  const int64_t N = w.dim(0);
  std::vector<double> y(static_cast<size_t>(rows * N));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n) {
      double acc = b.defined() ? b.data<float>()[n] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        acc += h[static_cast<size_t>(r * K + k)] * wf[static_cast<size_t>(n * K + k)];
      y[static_cast<size_t>(r * N + n)] = acc;
    }
  return y;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size()) << got.desc();
  const float* g = got.data<float>();
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(g[i], want[i], tol * (1.0 + std::fabs(want[i]))) << "element " << i;
}

std::vector<double> rms_normed(const Tensor& x, const Tensor& nw, double eps) {
  const int64_t K = x.dim(-1), rows = x.numel() / K;
  std::vector<double> h(static_cast<size_t>(x.numel()));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data<float>() + r * K;
    double ss = 0;
    for (int64_t k = 0; k < K; ++k) ss += static_cast<double>(xr[k]) * xr[k];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(K) + eps);
    for (int64_t k = 0; k < K; ++k)
      h[static_cast<size_t>(r * K + k)] = xr[k] * inv * nw.data<float>()[k];
  }
  return h;
}

TEST(DecodeProj, RmsNormLinearIsLinearOfRmsNorm) {
  const Tensor x = rand_f32({3, 96}, 3.0f, 1), nw = rand_f32({96}, 1.0f, 2);
  const Tensor w = rand_f32({40, 96}, 0.1f, 3), b = rand_f32({40}, 0.5f, 4);
  const Tensor y = ops::rms_norm_linear(x, nw, 1e-6f, w, b);
  ASSERT_EQ(y.shape(), (Shape{3, 40}));
  expect_close(y, product(rms_normed(x, nw, 1e-6), 3, 96, w, b), 1e-5);
  // Exactly the composition it replaces.
  const Tensor ref = ops::linear(ops::rms_norm(x, nw, 1e-6f), w, b);
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data<float>()[i], ref.data<float>()[i]);
  // Leading dims are kept; no bias; BF16 weights.
  const Tensor x3 = rand_f32({2, 2, 96}, 1.0f, 5);
  const Tensor wb = w.to_dtype(DType::BF16);
  const Tensor y3 = ops::rms_norm_linear(x3, nw, 1e-5f, wb);
  ASSERT_EQ(y3.shape(), (Shape{2, 2, 40}));
  expect_close(y3, product(rms_normed(x3, nw, 1e-5), 4, 96, wb, Tensor()), 1e-5);
}

TEST(DecodeProj, LinearAddAddsTheProduct) {
  const Tensor a = rand_f32({4, 64}, 1.0f, 6), w = rand_f32({48, 64}, 0.2f, 7);
  const Tensor x0 = rand_f32({4, 48}, 2.0f, 8);
  Tensor x = x0.clone();
  ops::linear_add_(x, a, w);
  std::vector<double> want =
      product(std::vector<double>(a.data<float>(), a.data<float>() + 256), 4, 64, w, Tensor());
  for (size_t i = 0; i < want.size(); ++i) want[i] += x0.data<float>()[i];
  expect_close(x, want, 1e-6);
}

TEST(DecodeProj, SwigluLinearAddAddsTheProduct) {
  const int64_t I = 80;
  const Tensor gu = rand_f32({2, 2 * I}, 4.0f, 9), w = rand_f32({32, I}, 0.2f, 10);
  const Tensor x0 = rand_f32({2, 32}, 1.0f, 11);
  Tensor x = x0.clone();
  ops::swiglu_linear_add_(x, gu, w.to_dtype(DType::BF16));
  std::vector<double> h(static_cast<size_t>(2 * I));
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t i = 0; i < I; ++i) {
      const double g = gu.data<float>()[r * 2 * I + i], u = gu.data<float>()[r * 2 * I + I + i];
      h[static_cast<size_t>(r * I + i)] = g / (1.0 + std::exp(-g)) * u;
    }
  std::vector<double> want = product(h, 2, I, w.to_dtype(DType::BF16), Tensor());
  for (size_t i = 0; i < want.size(); ++i) want[i] += x0.data<float>()[i];
  expect_close(x, want, 1e-5);
}

TEST(DecodeProj, BadArgumentsFail) {
  const Tensor x = rand_f32({2, 16}, 1.0f, 12), nw = rand_f32({16}, 1.0f, 13);
  const Tensor w = rand_f32({8, 16}, 1.0f, 14);
  EXPECT_THROW(ops::rms_norm_linear(x, rand_f32({15}, 1.0f, 1), 1e-6f, w), Error);
  EXPECT_THROW(ops::rms_norm_linear(x, nw, 1e-6f, rand_f32({8, 15}, 1.0f, 1)), Error);
  EXPECT_THROW(ops::rms_norm_linear(x, nw, 1e-6f, w, rand_f32({7}, 1.0f, 1)), Error);
  EXPECT_THROW(ops::rms_norm_linear(x.to_dtype(DType::BF16), nw, 1e-6f, w), Error);
  Tensor out = rand_f32({2, 8}, 1.0f, 15);
  EXPECT_THROW(ops::linear_add_(out, x, rand_f32({9, 16}, 1.0f, 1)), Error);  // x is [2, 8]
  Tensor wide = rand_f32({3, 8}, 1.0f, 16);
  EXPECT_THROW(ops::linear_add_(wide, x, w), Error);  // leading dims differ
  // The input may not overlap the output it is added to.
  Tensor sq = rand_f32({2, 16}, 1.0f, 17);
  EXPECT_THROW(ops::linear_add_(sq, sq, rand_f32({16, 16}, 1.0f, 1)), Error);
  EXPECT_THROW(ops::swiglu_linear_add_(out, rand_f32({2, 15}, 1.0f, 1), w), Error);  // odd
  // The weight takes I = 16 inputs, not the 2 I of gu.
  EXPECT_THROW(ops::swiglu_linear_add_(out, rand_f32({2, 32}, 1.0f, 1), rand_f32({8, 32}, 1, 1)),
               Error);
  EXPECT_NO_THROW(ops::swiglu_linear_add_(out, rand_f32({2, 32}, 1.0f, 1), w));
}

}  // namespace
}  // namespace stepaudio
