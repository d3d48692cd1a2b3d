// The convolution-family ops against naive loops written straight from the PyTorch definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "ops/conv_ops.h"

namespace stepaudio {
namespace {

Tensor random_tensor(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& f : v) f = u(rng);
  return Tensor::from_vector(v, shape);
}

// Conv1d by its definition.
std::vector<float> naive_conv1d(const Tensor& x, const Tensor& w, const Tensor& b,
                                const ops::Conv1dOptions& o) {
  const int64_t B = x.dim(0), Ci = x.dim(1), T = x.dim(2), Co = w.dim(0), Cg = w.dim(1),
                K = w.dim(2);
  const int64_t To = (T + o.pad_left + o.pad_right - o.dilation * (K - 1) - 1) / o.stride + 1;
  const int64_t og = Co / o.groups;
  auto xv = x.to_f32_vector(), wv = w.to_f32_vector();
  std::vector<float> y(static_cast<size_t>(B * Co * To));
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t t = 0; t < To; ++t) {
        double acc = b.defined() ? b.to_f32_vector()[co] : 0.0;
        const int64_t g = co / og;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t k = 0; k < K; ++k) {
            const int64_t src = t * o.stride - o.pad_left + k * o.dilation;
            if (src < 0 || src >= T) continue;
            acc += double(wv[(co * Cg + c) * K + k]) * xv[(bi * Ci + g * Cg + c) * T + src];
          }
        y[(bi * Co + co) * To + t] = static_cast<float>(acc);
      }
  return y;
}

// ConvTranspose1d by its definition (scatter form).
std::vector<float> naive_conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b,
                                          int64_t stride, int64_t pad) {
  const int64_t B = x.dim(0), Ci = x.dim(1), T = x.dim(2), Co = w.dim(1), K = w.dim(2);
  const int64_t To = (T - 1) * stride - 2 * pad + K;
  auto xv = x.to_f32_vector(), wv = w.to_f32_vector();
  std::vector<double> y(static_cast<size_t>(B * Co * To), 0.0);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int64_t co = 0; co < Co; ++co)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t k = 0; k < K; ++k) {
            const int64_t dst = t * stride - pad + k;
            if (dst < 0 || dst >= To) continue;
            y[(bi * Co + co) * To + dst] +=
                double(xv[(bi * Ci + ci) * T + t]) * wv[(ci * Co + co) * K + k];
          }
  std::vector<float> out(y.size());
  auto bv = b.defined() ? b.to_f32_vector() : std::vector<float>();
  for (size_t i = 0; i < y.size(); ++i)
    out[i] = static_cast<float>(y[i] + (b.defined() ? bv[(i / To) % Co] : 0.0));
  return out;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "at " << i;
}

struct ConvCase {
  int64_t B, Ci, Co, T, K;
  ops::Conv1dOptions o;
  bool bias;
};

TEST(ConvOps, Conv1dMatchesDefinition) {
  const ConvCase cases[] = {
      {1, 3, 4, 10, 3, {}, true},
      {2, 4, 6, 17, 3, {.stride = 2, .pad_left = 1, .pad_right = 1}, true},
      {1, 5, 3, 20, 3, {.pad_left = 2, .pad_right = 0, .dilation = 2}, false},  // causal, dilated
      {2, 6, 4, 15, 5, {.pad_left = 3, .pad_right = 1, .groups = 2}, true},
      {1, 8, 8, 31, 7, {.pad_left = 3, .pad_right = 3, .groups = 8}, true},  // depthwise
      {1, 4, 8, 12, 3, {.pad_left = 1, .pad_right = 1, .dilation = 3, .groups = 4}, true},
      {1, 16, 16, 5000, 11, {.pad_left = 25, .pad_right = 25, .dilation = 5}, true},  // > tile
      {1, 2, 3, 9, 1, {.stride = 3}, false},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(fmt::format("B{} Ci{} Co{} T{} K{} s{} p{}/{} d{} g{}", c.B, c.Ci, c.Co, c.T, c.K,
                             c.o.stride, c.o.pad_left, c.o.pad_right, c.o.dilation, c.o.groups));
    Tensor x = random_tensor({c.B, c.Ci, c.T}, seed++);
    Tensor w = random_tensor({c.Co, c.Ci / c.o.groups, c.K}, seed++);
    Tensor b = c.bias ? random_tensor({c.Co}, seed++) : Tensor();
    Tensor y = ops::conv1d_ex(x, w, b, c.o);
    const int64_t To =
        (c.T + c.o.pad_left + c.o.pad_right - c.o.dilation * (c.K - 1) - 1) / c.o.stride + 1;
    ASSERT_EQ(y.shape(), (Shape{c.B, c.Co, To}));
    expect_near(y.to_f32_vector(), naive_conv1d(x, w, b, c.o), 1e-4f);
  }
}

TEST(ConvOps, Conv1dHalfWeightsAreUpcast) {
  Tensor x = random_tensor({1, 4, 20}, 7);
  Tensor w = random_tensor({6, 2, 3}, 8).to_dtype(DType::BF16);
  Tensor b = random_tensor({6}, 9).to_dtype(DType::F16);
  ops::Conv1dOptions o{.pad_left = 1, .pad_right = 1, .groups = 2};
  expect_near(ops::conv1d_ex(x, w, b, o).to_f32_vector(),
              naive_conv1d(x, w.to_dtype(DType::F32), b.to_dtype(DType::F32), o), 1e-4f);
}

TEST(ConvOps, Conv1dHandComputed) {
  // x = [1 2 3 4], w = [1 0 -1], padding 1/1: y[t] = x[t-1] - x[t+1].
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 4});
  Tensor w = Tensor::from_vector({1, 0, -1}, {1, 1, 3});
  Tensor y = ops::conv1d_ex(x, w, {}, {.pad_left = 1, .pad_right = 1});
  EXPECT_EQ(y.to_f32_vector(), (std::vector<float>{-2, -2, -2, 3}));
}

TEST(ConvOps, ConvTranspose1dMatchesDefinition) {
  struct Case {
    int64_t B, Ci, Co, T, K, stride, pad;
  };
  const Case cases[] = {{1, 3, 2, 5, 3, 1, 0},   {2, 4, 3, 7, 16, 8, 4}, {1, 6, 5, 9, 11, 5, 3},
                        {1, 5, 4, 11, 7, 3, 2},  {1, 2, 2, 4, 4, 2, 1},  {1, 3, 3, 1, 5, 4, 2},
                        {1, 8, 4, 4500, 4, 2, 1}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(
        fmt::format("B{} Ci{} Co{} T{} K{} s{} p{}", c.B, c.Ci, c.Co, c.T, c.K, c.stride, c.pad));
    Tensor x = random_tensor({c.B, c.Ci, c.T}, seed++);
    Tensor w = random_tensor({c.Ci, c.Co, c.K}, seed++);
    Tensor b = random_tensor({c.Co}, seed++);
    Tensor y = ops::conv_transpose1d(x, w, b, c.stride, c.pad);
    ASSERT_EQ(y.shape(), (Shape{c.B, c.Co, (c.T - 1) * c.stride - 2 * c.pad + c.K}));
    expect_near(y.to_f32_vector(), naive_conv_transpose1d(x, w, b, c.stride, c.pad), 1e-4f);
  }
}

TEST(ConvOps, ConvTranspose1dHandComputed) {
  // x = [1 2], w = [1 1 1], stride 2, no padding: [1 1 1+2 2 2].
  Tensor x = Tensor::from_vector({1, 2}, {1, 1, 2});
  Tensor w = Tensor::from_vector({1, 1, 1}, {1, 1, 3});
  EXPECT_EQ(ops::conv_transpose1d(x, w, {}, 2, 0).to_f32_vector(),
            (std::vector<float>{1, 1, 3, 2, 2}));
  // padding 1 trims one sample from each end.
  EXPECT_EQ(ops::conv_transpose1d(x, w, {}, 2, 1).to_f32_vector(), (std::vector<float>{1, 3, 2}));
}

TEST(ConvOps, PadTimeModes) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 4});
  EXPECT_EQ(ops::pad_time(x, 2, 1, ops::PadMode::Zero).to_f32_vector(),
            (std::vector<float>{0, 0, 1, 2, 3, 4, 0, 0, 0, 10, 20, 30, 40, 0}));
  // torch reflect: the edge sample is not repeated.
  EXPECT_EQ(ops::pad_time(x, 3, 2, ops::PadMode::Reflect).to_f32_vector(),
            (std::vector<float>{4, 3, 2, 1, 2, 3, 4, 3, 2, 40, 30, 20, 10, 20, 30, 40, 30, 20}));
  EXPECT_EQ(ops::pad_time(x, 1, 2, ops::PadMode::Replicate).to_f32_vector(),
            (std::vector<float>{1, 1, 2, 3, 4, 4, 4, 10, 10, 20, 30, 40, 40, 40}));
  EXPECT_EQ(ops::pad_time(x, 0, 0, ops::PadMode::Reflect).to_f32_vector(), x.to_f32_vector());
}

TEST(ConvOps, UpsampleNearest) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 1, 2});
  Tensor y = ops::upsample_nearest_time(x, 3);
  EXPECT_EQ(y.shape(), (Shape{2, 1, 6}));
  EXPECT_EQ(y.to_f32_vector(), (std::vector<float>{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4}));
}

TEST(ConvOps, ArgumentErrors) {
  Tensor x = random_tensor({1, 4, 8}, 3);
  auto throws_with = [](auto&& f, const std::string& text) {
    try {
      f();
      ADD_FAILURE() << "expected an error containing '" << text << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  // Weight channels do not match C_in / groups.
  throws_with([&] { ops::conv1d_ex(x, random_tensor({2, 3, 3}, 1), {}, {}); }, "conv1d_ex");
  throws_with([&] { ops::conv1d_ex(x, random_tensor({3, 2, 3}, 1), {}, {.groups = 2}); }, "groups");
  // Kernel longer than the padded input.
  throws_with(
      [&] {
        ops::conv1d_ex(x, random_tensor({2, 4, 5}, 1), {}, {.dilation = 2});
      },
      "shorter");
  throws_with([&] { ops::conv1d_ex(x, random_tensor({2, 4, 3}, 1), {}, {.stride = 0}); }, "stride");
  throws_with(
      [&] {
        ops::conv1d_ex(x, random_tensor({2, 4, 3}, 1), random_tensor({3}, 2), {});
      },
      "bias");
  throws_with(
      [&] {
        ops::conv1d_ex(random_tensor({4, 8}, 1), random_tensor({2, 4, 3}, 1), {}, {});
      },
      "[B, C, T]");
  throws_with(
      [&] {
        ops::conv_transpose1d(x, random_tensor({3, 2, 4}, 1), {}, 2, 1);
      },
      "conv_transpose1d");
  throws_with(
      [&] {
        ops::conv_transpose1d(random_tensor({1, 4, 1}, 1), random_tensor({4, 2, 2}, 1), {}, 1, 2);
      },
      "not positive");
  throws_with([&] { ops::pad_time(x, 8, 0, ops::PadMode::Reflect); }, "smaller than the length");
  throws_with([&] { ops::pad_time(x, -1, 0, ops::PadMode::Zero); }, "negative");
  throws_with([&] { ops::upsample_nearest_time(x, 0); }, "factor");
  throws_with([&] { ops::pad_time(x.to_dtype(DType::BF16), 1, 1, ops::PadMode::Zero); }, "F32");
}

}  // namespace
}  // namespace stepaudio
