// The fused encoder ops and BF16-activation linear on CUDA against the CPU reference at the
// encoder's shapes (1251 / 1500 rows of 1280 and 5120), outputs NaN-poisoned.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/cuda/allocator.h"
#include "gpu_util.h"
#include "ops/fused_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using gpu_test::kGpu;
using gpu_test::rel_l2;

Tensor rnd(Shape s, float scale, float mean = 0.0f) {
  static std::mt19937 g(99);
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (float& x : v) x = d(g);
  return Tensor::from_vector(v, std::move(s));
}

class FusedOpsCuda : public gpu_test::PoisonedGpu {
 protected:
};

// F32 outputs match to fp32 rounding; BF16 outputs to one bf16 rounding (2^-9 relative).
constexpr double kF32Tol = 1e-5, kBf16Tol = 4e-3;

// Widths 1280 and 2048 take the warp-per-row kernel; 1283 (not a multiple of 4) and 3584
// (wider than its registers) the block-per-row one.
TEST_F(FusedOpsCuda, LayerNormTo) {
  struct Case {
    int64_t rows, n;
  };
  for (Case c : {Case{1251, 1280}, Case{3000, 1280}, Case{3, 1280}, Case{5, 2048}, Case{61, 1283},
                 Case{61, 3584}}) {
    Tensor x = rnd({c.rows, c.n}, 2.0f, 0.5f), w = rnd({c.n}, 1.0f), b = rnd({c.n}, 0.3f);
    for (DType out : {DType::F32, DType::BF16}) {
      const Tensor ref = ops::layer_norm_to(x, w, b, 1e-5f, out);
      const Tensor got = ops::layer_norm_to(x.to(kGpu), w.to(kGpu), b.to(kGpu), 1e-5f, out);
      EXPECT_LT(rel_l2(got, ref), out == DType::F32 ? kF32Tol : kBf16Tol) << c.rows << "x" << c.n;
    }
  }
}

TEST_F(FusedOpsCuda, BiasCast) {
  for (int64_t n : {int64_t{1280}, int64_t{1283}}) {
    Tensor x = rnd({1251, n}, 2.0f), b = rnd({n}, 0.5f);
    for (DType out : {DType::F32, DType::BF16}) {
      const double tol = out == DType::F32 ? kF32Tol : kBf16Tol;
      EXPECT_LT(rel_l2(ops::bias_cast(x.to(kGpu), b.to(kGpu), out), ops::bias_cast(x, b, out)),
                tol);
      EXPECT_LT(rel_l2(ops::bias_cast(x.to(kGpu), Tensor(), out), ops::bias_cast(x, Tensor(), out)),
                tol);
    }
  }
}

// The encoder's fused q|k|v output ([1251, 3 x 1280] -> [3, 1251, 1280]) with its bias.
TEST_F(FusedOpsCuda, BiasCastSplit) {
  for (int64_t n : {int64_t{1280}, int64_t{1282}}) {
    Tensor x = rnd({1251, 3 * n}, 2.0f), b = rnd({3 * n}, 0.5f);
    for (DType out : {DType::F32, DType::BF16}) {
      const Tensor got = ops::bias_cast_split(x.to(kGpu), b.to(kGpu), 3, out);
      ASSERT_EQ(got.shape(), (Shape{3, 1251, n}));
      EXPECT_LT(rel_l2(got, ops::bias_cast_split(x, b, 3, out)),
                out == DType::F32 ? kF32Tol : kBf16Tol);
    }
  }
}

TEST_F(FusedOpsCuda, AddLayerNormAndResidual) {
  Tensor x = rnd({2, 1251, 1280}, 3.0f), r = rnd({2, 1251, 1280}, 1.0f);
  Tensor rb = rnd({1280}, 0.2f), w = rnd({1280}, 1.0f), b = rnd({1280}, 0.3f);
  for (bool with_bias : {true, false}) {
    for (DType out : {DType::F32, DType::BF16}) {
      Tensor xc = x.clone(), xg = x.to(kGpu);
      const Tensor bias = with_bias ? rb : Tensor();
      const Tensor ref = ops::add_layer_norm_(xc, r, bias, w, b, 1e-5f, out);
      const Tensor got = ops::add_layer_norm_(xg, r.to(kGpu), with_bias ? rb.to(kGpu) : Tensor(),
                                              w.to(kGpu), b.to(kGpu), 1e-5f, out);
      EXPECT_LT(rel_l2(xg, xc), kF32Tol);  // the residual was updated in place
      EXPECT_LT(rel_l2(got, ref), out == DType::F32 ? kF32Tol : kBf16Tol);
    }
  }
  Tensor xc = x.clone(), xg = x.to(kGpu);
  Tensor rbh = rb.to_dtype(DType::BF16);
  ops::add_residual_(xc, r, rbh);
  ops::add_residual_(xg, r.to(kGpu), rbh.to(kGpu));
  EXPECT_LT(rel_l2(xg, xc), kF32Tol);
}

TEST_F(FusedOpsCuda, BiasGelu) {
  for (int64_t n : {int64_t{5120}, int64_t{77}}) {
    Tensor x = rnd({1251, n}, 2.0f), b = rnd({n}, 0.5f);
    for (DType out : {DType::F32, DType::BF16}) {
      const Tensor ref = ops::bias_gelu(x, b, out);
      const Tensor got = ops::bias_gelu(x.to(kGpu), b.to(kGpu), out);
      EXPECT_LT(rel_l2(got, ref), out == DType::F32 ? kF32Tol : kBf16Tol) << n;
    }
  }
  // The scalar path of the residual add (odd width).
  Tensor x = rnd({33, 77}, 1.0f), r = rnd({33, 77}, 1.0f), rb = rnd({77}, 0.2f);
  Tensor xc = x.clone(), xg = x.to(kGpu);
  ops::add_residual_(xc, r, rb);
  ops::add_residual_(xg, r.to(kGpu), rb.to(kGpu));
  EXPECT_LT(rel_l2(xg, xc), kF32Tol);
}

// BF16 activations with BF16 weights: the same exact products as the CPU's upcast, accumulated in
// fp32 (cuBLAS for many rows, the GEMV for few).
TEST_F(FusedOpsCuda, LinearWithBf16Activations) {
  for (int64_t M : {int64_t{1251}, int64_t{5}}) {
    Tensor x = rnd({M, 1280}, 1.0f).to_dtype(DType::BF16);
    Tensor w = rnd({5120, 1280}, 0.03f).to_dtype(DType::BF16), b = rnd({5120}, 0.1f);
    const Tensor ref = ops::linear(x, w, b);
    EXPECT_LT(rel_l2(ops::linear(x.to(kGpu), w.to(kGpu), b.to(kGpu)), ref), kF32Tol) << M;
    Tensor wf = w.to_dtype(DType::F32);
    EXPECT_LT(rel_l2(ops::linear(x.to(kGpu), wf.to(kGpu), b.to(kGpu)), ops::linear(x, wf, b)),
              kF32Tol)
        << M;
  }
}

}  // namespace
}  // namespace stepaudio
