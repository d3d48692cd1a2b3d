#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "ops/act_ops.h"

namespace stepaudio {
namespace {

std::vector<float> sample(int64_t n, float lo, float hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  v[0] = 0.f;  // the kink of the piecewise activations
  return v;
}

// Runs an in-place op on a tensor large enough to take the threaded path and compares each
// element against a double-precision formula.
void check(const std::function<void(Tensor&)>& op, const std::function<double(double)>& ref,
           float lo = -8.f, float hi = 8.f, double tol = 2e-6) {
  const int64_t n = 21 * 2400;  // above the kernels' grain, so the threaded path runs
  auto v = sample(n, lo, hi, 42);
  Tensor t = Tensor::from_vector(v, {3, 7, n / 21});
  ASSERT_EQ(t.numel(), n);
  op(t);
  auto out = t.to_f32_vector();
  for (int64_t i = 0; i < n; ++i) {
    const double want = ref(v[static_cast<size_t>(i)]);
    ASSERT_NEAR(out[static_cast<size_t>(i)], want, tol * std::max(1.0, std::fabs(want)))
        << "at x = " << v[static_cast<size_t>(i)];
  }
}

TEST(ActOps, LeakyRelu) {
  check([](Tensor& t) { ops::leaky_relu_(t, 0.1f); },
        [](double x) { return x >= 0 ? x : 0.1 * x; });
}

TEST(ActOps, Elu) {
  check([](Tensor& t) { ops::elu_(t, 1.5f); },
        [](double x) { return x > 0 ? x : 1.5 * (std::exp(x) - 1); });
}

TEST(ActOps, Silu) {
  check([](Tensor& t) { ops::silu_(t); }, [](double x) { return x / (1 + std::exp(-x)); });
}

TEST(ActOps, Mish) {
  check([](Tensor& t) { ops::mish_(t); },
        [](double x) { return x * std::tanh(std::log1p(std::exp(x))); }, -30.f, 30.f);
}

TEST(ActOps, Tanh) {
  check([](Tensor& t) { ops::tanh_(t); }, [](double x) { return std::tanh(x); });
}

TEST(ActOps, GeluTanh) {
  check([](Tensor& t) { ops::gelu_tanh_(t); },
        [](double x) {
          return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        });
}

TEST(ActOps, Exp) {
  check([](Tensor& t) { ops::exp_(t); }, [](double x) { return std::exp(x); });
}

TEST(ActOps, Sin) {
  check([](Tensor& t) { ops::sin_(t); }, [](double x) { return std::sin(x); });
}

TEST(ActOps, Scale) {
  check([](Tensor& t) { ops::scale_(t, -0.25f); }, [](double x) { return -0.25 * x; });
}

TEST(ActOps, Mul) {
  auto a = sample(1000, -3, 3, 1), b = sample(1000, -3, 3, 2);
  Tensor ta = Tensor::from_vector(a, {10, 100}), tb = Tensor::from_vector(b, {10, 100});
  ops::mul_(ta, tb);
  auto out = ta.to_f32_vector();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_FLOAT_EQ(out[i], a[i] * b[i]);
  Tensor wrong = Tensor::zeros({100, 10}, DType::F32);
  EXPECT_THROW(ops::mul_(ta, wrong), Error);
}

TEST(ActOps, Snake) {
  const int64_t B = 2, C = 3, T = 50;
  auto x = sample(B * C * T, -4, 4, 3);
  std::vector<float> alpha = {0.5f, 1.0f, 2.5f};
  Tensor tx = Tensor::from_vector(x, {B, C, T});
  ops::snake_(tx, Tensor::from_vector(alpha, {C}));
  auto out = tx.to_f32_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) {
        const size_t i = static_cast<size_t>((b * C + c) * T + t);
        const double a = alpha[static_cast<size_t>(c)];
        const double s = std::sin(a * x[i]);
        ASSERT_NEAR(out[i], x[i] + s * s / (a + 1e-9), 1e-5);
      }
  EXPECT_THROW(ops::snake_(tx, Tensor::from_vector({1.f, 2.f}, {2})), Error);
}

TEST(ActOps, RejectsNonF32) {
  Tensor t = Tensor::zeros({4}, DType::BF16);
  EXPECT_THROW(ops::silu_(t), Error);
  Tensor u;
  EXPECT_THROW(ops::tanh_(u), Error);
}

}  // namespace
}  // namespace stepaudio
