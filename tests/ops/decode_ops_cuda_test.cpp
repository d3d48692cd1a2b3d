// The decode-step ops and the device sampler on CUDA against the CPU reference at the real
// model's shapes (hidden 3584, 28 q / 4 KV heads of 128, FFN 18944, vocab 158720), batches of
// 1-64 sequences at positions up to 8k, BF16 and F32 caches. Outputs are NaN-poisoned.
#include <gtest/gtest.h>

#include "gpu_util.h"
#include "ops/decode_ops.h"
#include "ops/sample_ops.h"

namespace stepaudio {
namespace {

using namespace gpu_test;

class CudaDecodeOps : public PoisonedGpu {};

Tensor i32(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

TEST_F(CudaDecodeOps, EmbeddingRowsAndSwiglu) {
  Tensor table = rand_bf16({4096, 3584}, 1.0f);
  Tensor ids = i32({0, 4095, 17, 17, 2048, 1, 3000, 5});
  Tensor want = ops::embedding_rows(table, ids);
  EXPECT_EQ(rel_l2(ops::embedding_rows(gpu(table), gpu(ids)), want), 0.0);
  Tensor gu = rand_f32({8, 2 * 18944}, 4.0f);
  EXPECT_LE(rel_l2(ops::swiglu(gpu(gu)), ops::swiglu(gu)), 1e-6);
  Tensor cat = ops::concat_cols({gpu(rand_f32({3, 5})), gpu(rand_f32({3, 7}))});
  EXPECT_EQ(cat.shape(), (Shape{3, 12}));
}

TEST_F(CudaDecodeOps, AddRmsNorm) {
  Tensor x = rand_f32({64, 3584}, 3.0f), r = rand_f32({64, 3584}), w = rand_f32({3584});
  Tensor xg = gpu(x);
  Tensor yg = ops::add_rms_norm(xg, gpu(r), gpu(w), 1e-6f);
  Tensor y = ops::add_rms_norm(x, r, w, 1e-6f);
  EXPECT_LE(rel_l2(xg, x), 1e-7);
  EXPECT_LE(rel_l2(yg, y), 1e-5);
}

// qkv_rope_append then decode_attention over a cache whose other rows are random, for sequences
// of very different lengths in scattered slots.
void attention_case(DType cache_type, int64_t B, int64_t max_len, std::vector<int32_t> pos) {
  SCOPED_TRACE(testing::Message() << dtype_name(cache_type) << " B=" << B);
  const int64_t H = 28, Hkv = 4, D = 128, S = B + 2;
  std::vector<int32_t> slot;
  for (int64_t b = 0; b < B; ++b) slot.push_back(static_cast<int32_t>((b * 5 + 1) % S));
  // Random cache contents, identical on both sides (BF16-representable values).
  Tensor kc = rand_bf16({S, max_len, Hkv, D}, 1.0f), vc = rand_bf16({S, max_len, Hkv, D}, 1.0f);
  if (cache_type == DType::F32) kc = kc.to_dtype(DType::F32), vc = vc.to_dtype(DType::F32);
  Tensor kg = gpu(kc), vg = gpu(vc);
  if (cache_type == DType::BF16) {
    // The CPU reference keeps an F32 cache with the same BF16 values.
    kc = kc.to_dtype(DType::F32);
    vc = vc.to_dtype(DType::F32);
  }
  Tensor qkv = rand_f32({B, (H + 2 * Hkv) * D}, 2.0f);
  Tensor positions = i32(pos), slots = i32(slot);
  Tensor qg = ops::qkv_rope_append(gpu(qkv), H, Hkv, gpu(positions), gpu(slots), kg, vg, 1e6);
  Tensor q = ops::qkv_rope_append(qkv, H, Hkv, positions, slots, kc, vc, 1e6);
  EXPECT_LE(rel_l2(qg, q), 1e-6);
  if (cache_type == DType::BF16) {  // the CPU copy gets the same rounding the GPU cache got
    kc = kg.to(Device::cpu()).to_dtype(DType::F32);
    vc = vg.to(Device::cpu()).to_dtype(DType::F32);
  } else {
    EXPECT_LE(rel_l2(kg, kc), 1e-6);
    EXPECT_EQ(rel_l2(vg, vc), 0.0);
  }
  Tensor og =
      ops::decode_attention(qg, kg, vg, gpu(slots), gpu(positions), 1.0f / std::sqrt(128.f));
  Tensor o = ops::decode_attention(q, kc, vc, slots, positions, 1.0f / std::sqrt(128.f));
  EXPECT_LE(rel_l2(og, o), cache_type == DType::F32 ? 1e-5 : 1e-5);
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionF32Cache) {
  attention_case(DType::F32, 3, 1100, {0, 1099, 517});
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionBf16Cache) {
  attention_case(DType::BF16, 1, 8200, {8191});
  attention_case(DType::BF16, 8, 1030, {1, 1029, 128, 127, 129, 600, 1000, 5});
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionBatch64) {
  std::vector<int32_t> pos;
  for (int i = 0; i < 64; ++i) pos.push_back(static_cast<int32_t>((i * 37) % 300));
  attention_case(DType::BF16, 64, 300, pos);
}

// The device sampler chooses exactly what the CPU reference chooses: greedy with a penalty,
// and draws after temperature, top-k and top-p, over full-vocabulary rows.
TEST_F(CudaDecodeOps, SamplerMatchesCpuIds) {
  const int64_t B = 16, V = 158720;
  Tensor logits = rand_f32({B, V}, 8.0f);
  std::vector<ops::SampleParams> ps(B);
  for (int64_t b = 0; b < B; ++b) {
    ops::SampleParams& p = ps[static_cast<size_t>(b)];
    p.seed = 1000 + static_cast<uint64_t>(b);
    p.greedy = b % 4 == 0;
    p.temperature = b % 4 == 1 ? 1.0f : 0.7f;
    p.top_k = b % 3 == 0 ? 50 : 0;
    p.top_p = b % 2 == 0 ? 0.9f : 1.0f;
    p.repetition_penalty = b % 5 == 0 ? 1.0f : 1.3f;
  }
  Tensor params = ops::make_sample_params(ps, Device::cpu());
  Tensor presence = Tensor::zeros({B, V}, DType::U8);
  for (int64_t i = 0; i < B * V; i += 97) presence.data<uint8_t>()[i] = 1;
  Tensor steps = Tensor::zeros({B}, DType::I64), ids = Tensor::zeros({B}, DType::I32);
  Tensor lg = gpu(logits), pg = gpu(params), prg = gpu(presence), sg = gpu(steps), ig = gpu(ids);
  for (int round = 0; round < 5; ++round) {
    ops::sample_tokens(logits, params, presence, steps, ids);
    ops::sample_tokens(lg, pg, prg, sg, ig);
    const Tensor got = ig.to(Device::cpu());
    for (int64_t b = 0; b < B; ++b)
      EXPECT_EQ(got.data<int32_t>()[b], ids.data<int32_t>()[b])
          << "row " << b << " round " << round;
  }
  EXPECT_EQ(rel_l2(prg.to(Device::cpu()).to_dtype(DType::F32), presence.to_dtype(DType::F32)), 0.0);
  EXPECT_EQ(sg.to(Device::cpu()).data<int64_t>()[3], 5);
}

}  // namespace
}  // namespace stepaudio
