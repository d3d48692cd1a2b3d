// The bf16 tensor-core flash attention (AttentionOptions::compute = BF16, many queries, head_dim
// 64 or 128) against the fp32 CPU reference at the real shapes: the encoder (1280 wide, 20 heads
// of 64, up to 1500 positions, key mask) and the LLM prefill (28 / 4 heads of 128, causal, with
// and without a cached prefix), plus odd lengths that end inside a tile. Outputs are NaN-poisoned.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "backend/cuda/allocator.h"
#include "core/tensor.h"
#include "gpu_util.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using gpu_test::kGpu;
using gpu_test::rel_l2;

Tensor rand_f32(Shape shape, float scale, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  std::uniform_real_distribution<float> u(-scale, scale);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(rng);
  return t;
}

class FlashAttention : public gpu_test::PoisonedGpu {
 protected:
  std::mt19937_64 rng{20261129};
};

struct Case {
  int64_t B, Lq, Lk, H, Hkv, D;
  bool causal;
  int64_t q_offset;
  bool mask;  // encoder-style key mask: a different number of trailing keys per batch item
};

// Returns rel L2 of the GPU (compute) result against the CPU reference.
double run_case(const Case& c, DType compute, std::mt19937_64& rng) {
  Tensor q = rand_f32({c.B, c.Lq, c.H, c.D}, 2.0f, rng);
  Tensor k = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 2.0f, rng);
  Tensor v = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 1.0f, rng);
  ops::AttentionOptions opt;
  opt.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  opt.causal = c.causal;
  opt.q_offset = c.q_offset;
  ops::AttentionOptions gopt = opt;
  gopt.compute = compute;
  if (c.mask) {
    Tensor kb = Tensor::empty({c.B, c.Lk}, DType::F32);
    std::uniform_int_distribution<int64_t> used(1, c.Lk);
    for (int64_t b = 0; b < c.B; ++b) {
      // Item 0 keeps all but the last key (the 25 s chunk's layout); the others a random count.
      const int64_t n = b == 0 ? std::max<int64_t>(1, c.Lk - 1) : used(rng);
      for (int64_t j = 0; j < c.Lk; ++j) kb.data<float>()[b * c.Lk + j] = j < n ? 0.0f : -1e10f;
    }
    opt.key_bias = kb;
    gopt.key_bias = kb.to(kGpu);
  }
  const Tensor ref = ops::attention(q, k, v, opt);
  const Tensor got = ops::attention(q.to(kGpu), k.to(kGpu), v.to(kGpu), gopt);
  return rel_l2(got, ref);
}

std::string name(const Case& c) {
  return "B " + std::to_string(c.B) + " Lq " + std::to_string(c.Lq) + " Lk " +
         std::to_string(c.Lk) + " H " + std::to_string(c.H) + "/" + std::to_string(c.Hkv) + " D " +
         std::to_string(c.D) + (c.causal ? " causal" : "") + " q_offset " +
         std::to_string(c.q_offset) + (c.mask ? " masked" : "");
}

constexpr double kBf16Tol = 1e-2;

TEST_F(FlashAttention, EncoderShapesWithKeyMask) {
  for (const Case& c :
       {Case{1, 1500, 1500, 20, 20, 64, false, 0, true},
        Case{2, 1500, 1500, 20, 20, 64, false, 0, true},
        Case{2, 1251, 1251, 20, 20, 64, false, 0, true},
        Case{1, 1499, 1499, 20, 20, 64, false, 0, true},
        Case{3, 37, 37, 20, 20, 64, false, 0, true}, Case{1, 64, 64, 4, 4, 64, false, 0, false}}) {
    const double e = run_case(c, DType::BF16, rng);
    EXPECT_LT(e, kBf16Tol) << name(c);
    std::printf("[ flash ] %s: rel L2 %.3g\n", name(c).c_str(), e);
  }
}

// opt.out = BF16: the output rounded once (what the encoder's output projection reads), from
// the flash kernel and from the fp32 kernel alike.
TEST_F(FlashAttention, Bf16Output) {
  Tensor q = rand_f32({1, 1251, 20, 64}, 2.0f, rng), k = rand_f32({1, 1251, 20, 64}, 2.0f, rng);
  Tensor v = rand_f32({1, 1251, 20, 64}, 1.0f, rng);
  ops::AttentionOptions opt;
  opt.scale = 0.125f;
  const Tensor ref = ops::attention(q, k, v, opt);
  for (DType compute : {DType::BF16, DType::F32}) {
    ops::AttentionOptions g = opt;
    g.compute = compute;
    g.out = DType::BF16;
    const Tensor got = ops::attention(q.to(kGpu), k.to(kGpu), v.to(kGpu), g);
    EXPECT_EQ(got.dtype(), DType::BF16);
    EXPECT_LT(rel_l2(got, ref), kBf16Tol) << dtype_name(compute);
  }
}

TEST_F(FlashAttention, CausalPrefillGqa) {
  for (const Case& c :
       {Case{1, 1024, 1024, 28, 4, 128, true, 0, false},
        Case{1, 37, 37, 28, 4, 128, true, 0, false},
        Case{1, 1499, 1499, 28, 4, 128, true, 0, false},
        Case{1, 37, 237, 28, 4, 128, true, 200, false},     // after a cached prefix
        Case{1, 300, 1499, 28, 4, 128, true, 1199, false},  // prefix not a tile
        Case{2, 129, 129, 28, 4, 128, true, 0, false}, Case{1, 2, 70, 28, 4, 128, true, 68, false},
        Case{1, 200, 200, 20, 20, 64, true, 0, false}}) {
    const double e = run_case(c, DType::BF16, rng);
    EXPECT_LT(e, kBf16Tol) << name(c);
    std::printf("[ flash ] %s: rel L2 %.3g\n", name(c).c_str(), e);
  }
}

TEST_F(FlashAttention, BidirectionalHeadDim128WithMask) {
  for (const Case& c : {Case{2, 333, 333, 28, 4, 128, false, 0, true},
                        Case{1, 90, 517, 8, 8, 128, false, 0, true}}) {
    const double e = run_case(c, DType::BF16, rng);
    EXPECT_LT(e, kBf16Tol) << name(c);
  }
}

// Head dims the flash kernel does not take, single queries (decode) and F32 compute stay on the
// fp32 kernel: fp32 accuracy.
TEST_F(FlashAttention, OtherCasesStayFp32) {
  for (const Case& c : {Case{2, 151, 151, 2, 2, 32, false, 0, true},
                        Case{1, 1, 1024, 28, 4, 128, true, 1023, false},
                        Case{1, 61, 61, 2, 1, 16, true, 0, false}}) {
    EXPECT_LT(run_case(c, DType::BF16, rng), 1e-5) << name(c);
  }
  EXPECT_LT(run_case(Case{1, 300, 300, 20, 20, 64, false, 0, true}, DType::F32, rng), 1e-5);
}

// The bf16 kernel is not merely close on average: the error stays at bf16 rounding for inputs
// with large scores (peaked softmax), where a wrong running max or rescale would show.
TEST_F(FlashAttention, PeakedScores) {
  Case c{1, 257, 700, 20, 20, 64, false, 0, true};
  Tensor q = rand_f32({c.B, c.Lq, c.H, c.D}, 4.0f, rng);
  Tensor k = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 4.0f, rng);
  Tensor v = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 1.0f, rng);
  ops::AttentionOptions opt;
  opt.scale = 0.125f;
  const Tensor ref = ops::attention(q, k, v, opt);
  opt.compute = DType::BF16;
  const Tensor got = ops::attention(q.to(kGpu), k.to(kGpu), v.to(kGpu), opt);
  EXPECT_LT(rel_l2(got, ref), 3e-2);  // score std ~5: bf16 q/k move scores by ~0.02
}

// q/k/v handed over in bf16 (as the encoder does): the kernel reads them as they are; the fp32
// kernel (other head dims) upcasts them exactly. The CPU reference gets the same bf16 values.
TEST_F(FlashAttention, Bf16Inputs) {
  for (const Case& c : {Case{1, 1251, 1251, 20, 20, 64, false, 0, true},
                        Case{1, 100, 300, 28, 4, 128, true, 200, false},
                        Case{2, 151, 151, 2, 2, 32, false, 0, true}}) {
    Tensor q = rand_f32({c.B, c.Lq, c.H, c.D}, 2.0f, rng).to_dtype(DType::BF16);
    Tensor k = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 2.0f, rng).to_dtype(DType::BF16);
    Tensor v = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 1.0f, rng).to_dtype(DType::BF16);
    ops::AttentionOptions opt;
    opt.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
    opt.causal = c.causal;
    opt.q_offset = c.q_offset;
    ops::AttentionOptions gopt = opt;
    gopt.compute = DType::BF16;
    if (c.mask) {
      Tensor kb = Tensor::zeros({c.B, c.Lk}, DType::F32);
      for (int64_t b = 0; b < c.B; ++b) kb.data<float>()[b * c.Lk + c.Lk - 1 - b] = -1e10f;
      opt.key_bias = kb;
      gopt.key_bias = kb.to(kGpu);
    }
    const Tensor ref = ops::attention(q, k, v, opt);
    const Tensor got = ops::attention(q.to(kGpu), k.to(kGpu), v.to(kGpu), gopt);
    EXPECT_LT(rel_l2(got, ref), c.D == 32 ? 1e-5 : kBf16Tol) << name(c);
  }
}

TEST_F(FlashAttention, RejectsUnknownComputeType) {
  Tensor q = Tensor::zeros({1, 4, 2, 64}, DType::F32, kGpu);
  ops::AttentionOptions opt;
  opt.compute = DType::I32;
  EXPECT_THROW(ops::attention(q, q, q, opt), Error);
}

}  // namespace
}  // namespace stepaudio
