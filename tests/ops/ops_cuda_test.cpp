// Every CUDA op against the CPU reference on fresh random inputs of the real model's shapes
// (LLM: hidden 3584, 28/4 heads of 128, FFN 18944, vocab 158720; encoder: 1280 wide, 20 heads,
// 1500 positions). Outputs are poisoned: every GPU block is NaN-filled when handed out, so an
// element a kernel does not write fails the NaN check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cuda/allocator.h"
#include "backend/cuda/ops_cuda.h"
#include "core/tensor.h"
#include "gpu_util.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using namespace gpu_test;

class CudaOps : public PoisonedGpu {};

constexpr double kF32Tol = 1e-5;
constexpr double kBf16Tol = 1e-2;

// The GEMV (<= 8 rows) computes in fp32 on the stored weights, so even with BF16 weights it must
// match the CPU (which upcasts the same weights) to fp32 rounding.
// Forces products of up to 8 rows through the GEMV kernel (the default sends only 1 row there).
struct AllRowsGemv {
  AllRowsGemv() { cuda::set_gemv_max_rows(8); }
  ~AllRowsGemv() { cuda::set_gemv_max_rows(1); }
};

TEST_F(CudaOps, LinearGemvBf16MatchesCpu) {
  AllRowsGemv gemv;
  struct Case {
    int64_t M, K, N;
    bool bias;
  };
  for (Case c : {Case{1, 3584, 3584, true}, Case{1, 3584, 512, true}, Case{1, 3584, 18944, false},
                 Case{1, 18944, 3584, false}, Case{3, 3584, 4608, true},
                 Case{8, 18944, 3584, false}, Case{5, 32, 64, true}, Case{2, 20, 7, true}}) {
    Tensor x = rand_f32({c.M, c.K});
    Tensor w = rand_bf16({c.N, c.K}, 0.05f);
    Tensor b = c.bias ? rand_f32({c.N}, 0.1f) : Tensor();
    Tensor ref = ops::linear(x, w, b);
    Tensor got = ops::linear(gpu(x), gpu(w), c.bias ? gpu(b) : Tensor());
    EXPECT_LT(rel_l2(got, ref), kF32Tol) << "M " << c.M << " K " << c.K << " N " << c.N;
  }
}

TEST_F(CudaOps, LinearGemvLmHead) {
  Tensor x = rand_f32({1, 3584});
  Tensor w = rand_bf16({158720, 3584}, 0.02f);
  Tensor ref = ops::linear(x, w);
  Tensor got = ops::linear(gpu(x), gpu(w));
  EXPECT_LT(rel_l2(got, ref), kF32Tol);
}

TEST_F(CudaOps, LinearGemvF32AndF16Weights) {
  AllRowsGemv gemv;
  Tensor x = rand_f32({2, 1280});
  Tensor w = rand_f32({5120, 1280}, 0.05f);
  Tensor b = rand_f32({5120});
  EXPECT_LT(rel_l2(ops::linear(gpu(x), gpu(w), gpu(b)), ops::linear(x, w, b)), kF32Tol);
  Tensor wh = w.to_dtype(DType::F16);
  EXPECT_LT(rel_l2(ops::linear(gpu(x), gpu(wh), gpu(b)), ops::linear(x, wh, b)), kF32Tol);
}

// Many rows: cuBLAS. F32 weights are a true fp32 product; BF16 weights round the activations.
TEST_F(CudaOps, LinearGemmMatchesCpu) {
  struct Case {
    int64_t M, K, N;
  };
  for (Case c : {Case{61, 3584, 3584}, Case{61, 3584, 18944}, Case{1500, 1280, 5120},
                 Case{1500, 5120, 1280}, Case{9, 3584, 512}}) {
    Tensor x = rand_f32({c.M, c.K});
    Tensor wb = rand_bf16({c.N, c.K}, 0.05f);
    Tensor b = rand_f32({c.N}, 0.1f);
    Tensor ref = ops::linear(x, wb, b);
    EXPECT_LT(rel_l2(ops::linear(gpu(x), gpu(wb), gpu(b)), ref), kBf16Tol) << c.M << "x" << c.N;
    if (c.M * c.N * c.K <= int64_t{1500} * 1280 * 5120) {
      Tensor wf = wb.to_dtype(DType::F32);
      EXPECT_LT(rel_l2(ops::linear(gpu(x), gpu(wf), gpu(b)), ref), kF32Tol) << c.M << "x" << c.N;
    }
  }
}

TEST_F(CudaOps, Conv1dEncoderShapes) {
  struct Case {
    int64_t B, C, T, Co, stride;
  };
  for (Case c : {Case{1, 128, 3000, 1280, 1}, Case{2, 1280, 603, 1280, 2},
                 Case{1, 1280, 625, 1280, 2}, Case{1, 64, 7, 64, 2}}) {
    Tensor x = rand_f32({c.B, c.C, c.T});
    Tensor w = rand_bf16({c.Co, c.C, 3}, 0.05f);
    Tensor b = rand_f32({c.Co}, 0.1f);
    Tensor ref = ops::conv1d(x, w, b, c.stride, 1);
    Tensor wf = w.to_dtype(DType::F32);
    EXPECT_LT(rel_l2(ops::conv1d(gpu(x), gpu(wf), gpu(b), c.stride, 1), ref), kF32Tol);
    EXPECT_LT(rel_l2(ops::conv1d(gpu(x), gpu(w), gpu(b), c.stride, 1), ref), kBf16Tol);
  }
}

TEST_F(CudaOps, Norms) {
  Tensor x = rand_f32({61, 3584}, 3.0f);
  Tensor w = rand_f32({3584});
  EXPECT_LT(rel_l2(ops::rms_norm(gpu(x), gpu(w), 1e-6f), ops::rms_norm(x, w, 1e-6f)), kF32Tol);
  Tensor wb = rand_bf16({3584}, 1.0f);
  EXPECT_LT(rel_l2(ops::rms_norm(gpu(x), gpu(wb), 1e-6f), ops::rms_norm(x, wb, 1e-6f)), kF32Tol);
  Tensor e = rand_f32({2, 1500, 1280}, 2.0f);
  for (int64_t i = 0; i < e.numel(); ++i) e.data<float>()[i] += 0.5f;  // a mean to remove
  Tensor lw = rand_f32({1280}), lb = rand_f32({1280});
  EXPECT_LT(rel_l2(ops::layer_norm(gpu(e), gpu(lw), gpu(lb)), ops::layer_norm(e, lw, lb)), kF32Tol);
}

TEST_F(CudaOps, Pointwise) {
  Tensor x = rand_f32({1500, 5120}, 4.0f);
  EXPECT_LT(rel_l2(ops::gelu(gpu(x)), ops::gelu(x)), kF32Tol);
  EXPECT_LT(rel_l2(ops::relu(gpu(x)), ops::relu(x)), kF32Tol);
  Tensor g = rand_f32({7, 18944}, 6.0f), u = rand_f32({7, 18944});
  EXPECT_LT(rel_l2(ops::silu_mul(gpu(g), gpu(u)), ops::silu_mul(g, u)), kF32Tol);
  Tensor a = rand_f32({2, 1500, 1280});
  Tensor pos = rand_bf16({1500, 1280}, 1.0f);
  EXPECT_LT(rel_l2(ops::add(gpu(a), gpu(pos)), ops::add(a, pos)), kF32Tol);
  Tensor a2 = a.reshape({3000, 1280}), row = rand_f32({1280});
  EXPECT_LT(rel_l2(ops::add(gpu(a2), gpu(row)), ops::add(a2, row)), kF32Tol);
  Tensor pooled = ops::avg_pool_time(gpu(a));
  EXPECT_LT(rel_l2(pooled, ops::avg_pool_time(a)), kF32Tol);
  Tensor odd = rand_f32({2, 1251, 1280});
  EXPECT_LT(rel_l2(ops::avg_pool_time(gpu(odd)), ops::avg_pool_time(odd)), kF32Tol);
  Tensor t = rand_f32({2, 1280, 1251});
  EXPECT_LT(rel_l2(ops::transpose_last2(gpu(t)), ops::transpose_last2(t)), kF32Tol);
  Tensor hb = rand_bf16({61, 3584}, 2.0f);
  EXPECT_LT(rel_l2(ops::to_f32(gpu(hb)), ops::to_f32(hb)), kF32Tol);
}

TEST_F(CudaOps, Rope) {
  for (int64_t start : {int64_t{0}, int64_t{1000}, int64_t{16000}}) {
    Tensor q = rand_f32({61, 28, 128});
    Tensor ref = q.clone();
    ops::rope_(ref, start, 1e6);
    Tensor got = gpu(q);
    ops::rope_(got, start, 1e6);
    EXPECT_LT(rel_l2(got, ref), kF32Tol) << "start " << start;
  }
}

TEST_F(CudaOps, Embedding) {
  Tensor table = rand_bf16({158720, 3584}, 0.05f);
  std::vector<int32_t> ids{0, 151688, 158719, 42, 42, 77091, 198};
  EXPECT_LT(rel_l2(ops::embedding(gpu(table), ids), ops::embedding(table, ids)), kF32Tol);
  std::vector<int32_t> bad{3, 158720};
  EXPECT_THROW(ops::embedding(gpu(table), bad), Error);
}

struct AttnCase {
  int64_t B, Lq, Lk, H, Hkv, D;
  bool causal;
  int64_t q_offset;
  bool bias;
};

void check_attention(const AttnCase& c) {
  Tensor q = rand_f32({c.B, c.Lq, c.H, c.D}, 2.0f);
  Tensor k = rand_f32({c.B, c.Lk, c.Hkv, c.D}, 2.0f);
  Tensor v = rand_f32({c.B, c.Lk, c.Hkv, c.D});
  ops::AttentionOptions opt;
  opt.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  opt.causal = c.causal;
  opt.q_offset = c.q_offset;
  ops::AttentionOptions gopt = opt;
  if (c.bias) {
    // Mask the tail of each batch item's keys as the encoder does (-1e10), a different length
    // per item.
    Tensor kb = Tensor::empty({c.B, c.Lk}, DType::F32);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 0; j < c.Lk; ++j)
        kb.data<float>()[b * c.Lk + j] = j < c.Lk - 1 - 37 * b ? 0.0f : -1e10f;
    opt.key_bias = kb;
    gopt.key_bias = gpu(kb);
  }
  Tensor ref = ops::attention(q, k, v, opt);
  Tensor got = ops::attention(gpu(q), gpu(k), gpu(v), gopt);
  EXPECT_LT(rel_l2(got, ref), kF32Tol) << "B " << c.B << " Lq " << c.Lq << " Lk " << c.Lk << " H "
                                       << c.H << "/" << c.Hkv << " D " << c.D;
}

TEST_F(CudaOps, AttentionDecodeGqa) {
  check_attention({1, 1, 1024, 28, 4, 128, true, 1023, false});  // split-K
  check_attention({1, 1, 8192, 28, 4, 128, true, 8191, false});
  check_attention({1, 1, 1, 28, 4, 128, true, 0, false});
  check_attention({1, 1, 77, 2, 1, 16, true, 76, false});  // tiny-a geometry
}

TEST_F(CudaOps, AttentionPrefillCausal) {
  check_attention({1, 61, 61, 28, 4, 128, true, 0, false});
  check_attention({1, 413, 413, 28, 4, 128, true, 0, false});
  check_attention({1, 16, 80, 28, 4, 128, true, 64, false});  // a chunk after a cached prefix
  check_attention({1, 5, 5, 2, 1, 16, true, 0, false});
}

TEST_F(CudaOps, AttentionEncoderWithKeyBias) {
  check_attention({1, 1500, 1500, 20, 20, 64, false, 0, true});
  check_attention({2, 1251, 1251, 20, 20, 64, false, 0, true});
  check_attention({2, 151, 151, 2, 2, 32, false, 0, true});
}

}  // namespace
}  // namespace stepaudio
