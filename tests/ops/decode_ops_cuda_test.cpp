// The decode-step ops and the device sampler on CUDA against the CPU reference at the real
// model's shapes (hidden 3584, 28 q / 4 KV heads of 128, FFN 18944, vocab 158720), batches of
// 1-64 sequences at positions up to 8k, BF16 and F32 caches. Outputs are NaN-poisoned.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/graph.h"
#include "backend/cuda/kernels_cuda.h"
#include "backend/cuda/ops_cuda.h"
#include "gpu_util.h"
#include "ops/decode_ops.h"
#include "ops/ops.h"
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

struct AttnCase {
  DType cache;
  int64_t B, H, Hkv, D, max_len;
  std::vector<int32_t> pos;
  double tol;
};

// qkv_rope_append then decode_attention over a cache whose other rows are random, for sequences
// of very different lengths in scattered slots (a rotation, so no slot equals its row index).
// The BF16 cache with head dim 64/128 takes the tensor-core kernel (q and P rounded to bf16:
// ~4e-3 relative against the fp32 reference over the same cache values); the others the fp32
// CUDA-core kernel.
void attention_case(const AttnCase& c) {
  const int64_t B = c.B, H = c.H, Hkv = c.Hkv, D = c.D, max_len = c.max_len, S = B + 2;
  SCOPED_TRACE(testing::Message() << dtype_name(c.cache) << " B=" << B << " H=" << H
                                  << " Hkv=" << Hkv << " D=" << D << " max_len=" << max_len);
  ASSERT_EQ(static_cast<int64_t>(c.pos.size()), B);
  std::vector<int32_t> slot;
  for (int64_t b = 0; b < B; ++b) slot.push_back(static_cast<int32_t>((b + 1 + B / 2) % S));
  // Random cache contents, identical on both sides (BF16-representable values).
  Tensor kc = rand_bf16({S, max_len, Hkv, D}, 1.0f), vc = rand_bf16({S, max_len, Hkv, D}, 1.0f);
  if (c.cache == DType::F32) kc = kc.to_dtype(DType::F32), vc = vc.to_dtype(DType::F32);
  Tensor kg = gpu(kc), vg = gpu(vc);
  if (c.cache == DType::BF16) {
    // The CPU reference keeps an F32 cache with the same BF16 values.
    kc = kc.to_dtype(DType::F32);
    vc = vc.to_dtype(DType::F32);
  }
  Tensor qkv = rand_f32({B, (H + 2 * Hkv) * D}, 2.0f);
  Tensor positions = i32(c.pos), slots = i32(slot);
  Tensor qg = ops::qkv_rope_append(gpu(qkv), H, Hkv, gpu(positions), gpu(slots), kg, vg, 1e6);
  Tensor q = ops::qkv_rope_append(qkv, H, Hkv, positions, slots, kc, vc, 1e6);
  EXPECT_LE(rel_l2(qg, q), 1e-6);
  if (c.cache == DType::BF16) {  // the CPU copy gets the same rounding the GPU cache got
    kc = kg.to(Device::cpu()).to_dtype(DType::F32);
    vc = vg.to(Device::cpu()).to_dtype(DType::F32);
  } else {
    EXPECT_LE(rel_l2(kg, kc), 1e-6);
    EXPECT_EQ(rel_l2(vg, vc), 0.0);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Tensor og = ops::decode_attention(qg, kg, vg, gpu(slots), gpu(positions), scale);
  Tensor o = ops::decode_attention(q, kc, vc, slots, positions, scale);
  const double err = rel_l2(og, o);
  EXPECT_LE(err, c.tol);
  // Per row too, so that one short sequence cannot hide behind the others.
  const Tensor og_cpu = og.to(Device::cpu());
  for (int64_t b = 0; b < B; ++b) {
    const Tensor gr = og_cpu.slice_rows(b, b + 1), cr = o.slice_rows(b, b + 1);
    EXPECT_LE(rel_l2(gr, cr), 2 * c.tol) << "row " << b << " at position " << c.pos[b];
  }
  // Deterministic: a second launch (as a graph replay would) gives the same bits.
  Tensor og2 = ops::decode_attention(qg, kg, vg, gpu(slots), gpu(positions), scale);
  EXPECT_EQ(rel_l2(og2, og_cpu), 0.0);
  std::printf("  decode_attention %s B=%lld H=%lld Hkv=%lld D=%lld: rel L2 %.3g\n",
              std::string(dtype_name(c.cache)).c_str(), static_cast<long long>(B),
              static_cast<long long>(H), static_cast<long long>(Hkv), static_cast<long long>(D),
              err);
}

// Positions that start, end and straddle the 16-key warp slices and 64-key tiles, plus the
// cache's last row, cycled over B rows.
std::vector<int32_t> edge_positions(int64_t B, int64_t max_len) {
  const std::vector<int64_t> base{0,   1,   15,  16,  63,  64,  65,   127,
                                  128, 129, 255, 256, 511, 513, 1000, max_len - 1};
  std::vector<int32_t> pos;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t p =
        b < static_cast<int64_t>(base.size()) ? base[static_cast<size_t>(b)] : (b * 7919) % max_len;
    pos.push_back(static_cast<int32_t>(std::min(p, max_len - 1)));
  }
  return pos;
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionF32Cache) {
  attention_case({DType::F32, 3, 28, 4, 128, 1100, {0, 1099, 517}, 1e-5});
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionBf16Cache) {
  attention_case({DType::BF16, 1, 28, 4, 128, 8200, {8191}, 1e-2});
  attention_case({DType::BF16, 3, 28, 4, 128, 1100, {1000, 0, 129}, 1e-2});
  attention_case({DType::BF16, 8, 28, 4, 128, 1030, {1, 1029, 128, 127, 129, 600, 1000, 5}, 1e-2});
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionBf16Group4HeadDim64) {
  attention_case({DType::BF16, 1, 8, 2, 64, 300, {299}, 1e-2});
  attention_case({DType::BF16, 3, 8, 2, 64, 700, {699, 64, 1}, 1e-2});
  attention_case({DType::BF16, 64, 8, 2, 64, 7200, edge_positions(64, 7200), 1e-2});
}

// The largest group the tensor-core kernel takes (16 rows, no padding), and a head dim it does
// not take (the BF16 cache then goes through the fp32 kernel).
TEST_F(CudaDecodeOps, RopeAppendAndAttentionBf16Group16AndOtherHeadDim) {
  attention_case({DType::BF16, 5, 32, 2, 128, 520, {519, 0, 77, 256, 300}, 1e-2});
  attention_case({DType::BF16, 3, 8, 2, 96, 400, {399, 0, 200}, 1e-5});
}

TEST_F(CudaDecodeOps, RopeAppendAndAttentionBatch64) {
  std::vector<int32_t> pos;
  for (int i = 0; i < 64; ++i) pos.push_back(static_cast<int32_t>((i * 37) % 300));
  attention_case({DType::BF16, 64, 28, 4, 128, 300, pos, 1e-2});
  // Bigger splits (4 tiles per block at this batch and capacity).
  attention_case({DType::BF16, 64, 28, 4, 128, 1100, edge_positions(64, 1100), 1e-2});
}

// Device microseconds per call of call(i), i = 0..calls-1, captured once in a graph (no host
// gaps) and replayed.
double graph_us(const std::function<void(int64_t)>& call, int64_t calls) {
  cuda::set_poison_allocations(false);  // poisoning would put memsets into the graph
  cuda::Graph graph(0);
  graph.capture([&] {
    for (int64_t i = 0; i < calls; ++i) call(i);
  });
  graph.replay();
  const int reps = 5;
  cudaEvent_t e0, e1;
  EXPECT_EQ(cudaEventCreate(&e0), cudaSuccess);
  EXPECT_EQ(cudaEventCreate(&e1), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(e0, cudaStreamPerThread), cudaSuccess);
  for (int r = 0; r < reps; ++r) graph.replay();
  EXPECT_EQ(cudaEventRecord(e1, cudaStreamPerThread), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(e1), cudaSuccess);
  float ms = 0;
  EXPECT_EQ(cudaEventElapsedTime(&ms, e0, e1), cudaSuccess);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cuda::set_poison_allocations(true);
  return 1e3 * ms / static_cast<double>(calls * reps);
}

// Device time per call at the full model's shapes as bench_llm_gpu runs them (28 q / 4 KV heads
// of 128, BF16 cache of 1091 rows, context 1024): 20 calls captured in a graph (no host gaps),
// replayed and timed with events (graph_us). Prints microseconds and K/V bytes per second (no speed
// assertion: shared machines vary); the last output of the replays is checked against the CPU.
TEST_F(CudaDecodeOps, DecodeAttentionTimingFullShapes) {
  const int64_t H = 28, Hkv = 4, D = 128, max_len = 1091, ctx = 1024, calls = 20;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (int64_t B : {1, 8, 64}) {
    SCOPED_TRACE(testing::Message() << "B=" << B);
    Tensor kc = rand_bf16({B, max_len, Hkv, D}, 1.0f), vc = rand_bf16({B, max_len, Hkv, D}, 1.0f);
    Tensor q = rand_f32({B, H, D}, 2.0f);
    std::vector<int32_t> pos, slot;
    for (int64_t b = 0; b < B; ++b) {
      pos.push_back(static_cast<int32_t>(ctx - 1 + b % 3));
      slot.push_back(static_cast<int32_t>(B - 1 - b));
    }
    Tensor kg = gpu(kc), vg = gpu(vc), qg = gpu(q), pg = gpu(i32(pos)), sg = gpu(i32(slot));
    Tensor out;
    const double us =
        graph_us([&](int64_t) { out = ops::decode_attention(qg, kg, vg, sg, pg, scale); }, calls);
    const double bytes = 2.0 * B * (ctx + 1) * Hkv * D * 2;
    std::printf(
        "  decode_attention B=%lld ctx=%lld (28/4 heads of 128, BF16): %.2f us/call, "
        "%.2f TB/s of K+V\n",
        static_cast<long long>(B), static_cast<long long>(ctx), us, bytes / us * 1e-6);
    EXPECT_GT(us, 0.0);
    Tensor want = ops::decode_attention(q, kc.to_dtype(DType::F32), vc.to_dtype(DType::F32),
                                        i32(slot), i32(pos), scale);
    EXPECT_LE(rel_l2(out, want), 1e-2);
  }
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

// An odd vocabulary (the workspace's partial maxima then start off a 16-byte boundary unless
// padded), rows with -inf logits (masked ids), and more splits than some rows have entries.
TEST_F(CudaDecodeOps, SamplerOddVocabularyAndMaskedIds) {
  for (const int64_t V : {int64_t{7}, int64_t{1001}, int64_t{151387}}) {
    const int64_t B = 5;
    Tensor logits = rand_f32({B, V}, 4.0f);
    for (int64_t i = 0; i < B * V; i += 3) logits.data<float>()[i] = -INFINITY;
    std::vector<ops::SampleParams> ps(B);
    for (int64_t b = 0; b < B; ++b) {
      ops::SampleParams& p = ps[static_cast<size_t>(b)];
      p.seed = 7 + static_cast<uint64_t>(b);
      p.greedy = b == 0;
      p.temperature = b == 1 ? 1.0f : 0.8f;
      p.top_k = b == 3 ? 5 : 0;
      p.top_p = b == 4 ? 0.5f : 1.0f;
    }
    Tensor params = ops::make_sample_params(ps, Device::cpu());
    Tensor presence = Tensor::zeros({B, V}, DType::U8);
    Tensor steps = Tensor::zeros({B}, DType::I64), ids = Tensor::zeros({B}, DType::I32);
    Tensor lg = gpu(logits), pg = gpu(params), prg = gpu(presence), sg = gpu(steps), ig = gpu(ids);
    for (int round = 0; round < 3; ++round) {
      ops::sample_tokens(logits, params, presence, steps, ids);
      ops::sample_tokens(lg, pg, prg, sg, ig);
      const Tensor got = ig.to(Device::cpu());
      for (int64_t b = 0; b < B; ++b) {
        EXPECT_EQ(got.data<int32_t>()[b], ids.data<int32_t>()[b])
            << "V " << V << " row " << b << " round " << round;
        EXPECT_NE((b * V + got.data<int32_t>()[b]) % 3, 0) << "a masked id was drawn";
      }
    }
  }
}

// The fused decode projections (rms_norm_linear, linear_add_, swiglu_linear_add_) on CUDA
// against their CPU composition at the real shapes, batch 1 (fused GEMV) and 64 (cuBLAS).

// GPU result minus `before` (what an in-place op added), on the host.
Tensor added(const Tensor& after_gpu, const Tensor& before) {
  Tensor d = after_gpu.to(Device::cpu());
  for (int64_t i = 0; i < d.numel(); ++i) d.data<float>()[i] -= before.data<float>()[i];
  return d;
}

// rms_norm_linear at x [B, K] for weights of type wt, with and without bias.
void rms_norm_linear_case(int64_t B, int64_t N, int64_t K, DType wt, bool with_bias, double tol) {
  SCOPED_TRACE(testing::Message() << "rms_norm_linear B=" << B << " N=" << N << " K=" << K << " "
                                  << dtype_name(wt));
  const Tensor x = rand_f32({B, K}, 3.0f), nw = rand_f32({K}, 1.5f);
  Tensor w = rand_bf16({N, K}, 0.05f);
  if (wt != DType::BF16) w = w.to_dtype(wt);
  const Tensor b = with_bias ? rand_f32({N}, 0.5f) : Tensor();
  const Tensor want = ops::rms_norm_linear(x, nw, 1e-6f, w, b);
  const Tensor wg = gpu(w), bg = with_bias ? gpu(b) : Tensor();
  const Tensor got = ops::rms_norm_linear(gpu(x), gpu(nw), 1e-6f, wg, bg);
  EXPECT_LE(rel_l2(got, want), tol);
  // Deterministic: a second run is bit-identical (graph replays must be).
  EXPECT_EQ(rel_l2(ops::rms_norm_linear(gpu(x), gpu(nw), 1e-6f, wg, bg), got.to(Device::cpu())),
            0.0);
}

void linear_add_case(int64_t B, int64_t N, int64_t K, DType wt, double tol) {
  SCOPED_TRACE(testing::Message() << "linear_add_ B=" << B << " N=" << N << " K=" << K << " "
                                  << dtype_name(wt));
  const Tensor a = rand_f32({B, K}, 1.0f), x = rand_f32({B, N}, 1.0f);
  Tensor w = rand_bf16({N, K}, 0.05f);
  if (wt != DType::BF16) w = w.to_dtype(wt);
  Tensor xg = gpu(x);
  ops::linear_add_(xg, gpu(a), gpu(w));
  EXPECT_LE(rel_l2(added(xg, x), ops::linear(a, w)), tol);
}

void swiglu_linear_add_case(int64_t B, int64_t N, int64_t I, DType wt, double tol) {
  SCOPED_TRACE(testing::Message() << "swiglu_linear_add_ B=" << B << " N=" << N << " I=" << I << " "
                                  << dtype_name(wt));
  const Tensor gu = rand_f32({B, 2 * I}, 4.0f), x = rand_f32({B, N}, 1.0f);
  Tensor w = rand_bf16({N, I}, 0.02f);
  if (wt != DType::BF16) w = w.to_dtype(wt);
  Tensor xg = gpu(x);
  ops::swiglu_linear_add_(xg, gpu(gu), gpu(w));
  EXPECT_LE(rel_l2(added(xg, x), ops::linear(ops::swiglu(gu), w)), tol);
}

TEST_F(CudaDecodeOps, RmsNormLinearBf16) {
  for (int64_t B : {1, 64}) {
    rms_norm_linear_case(B, 4608, 3584, DType::BF16, true, 1e-2);    // q|k|v
    rms_norm_linear_case(B, 37888, 3584, DType::BF16, false, 1e-2);  // gate|up
  }
}

TEST_F(CudaDecodeOps, RmsNormLinearLmHead) {
  for (int64_t B : {1, 64}) rms_norm_linear_case(B, 158720, 3584, DType::BF16, false, 1e-2);
}

TEST_F(CudaDecodeOps, RmsNormLinearF32) {
  for (int64_t B : {1, 64}) {
    rms_norm_linear_case(B, 4608, 3584, DType::F32, true, 1e-5);
    rms_norm_linear_case(B, 3584, 3584, DType::F32, false, 1e-5);
  }
}

TEST_F(CudaDecodeOps, LinearAdd) {
  for (int64_t B : {1, 64}) {
    linear_add_case(B, 3584, 3584, DType::BF16, 1e-2);  // o
    linear_add_case(B, 3584, 3584, DType::F32, 1e-5);
  }
}

TEST_F(CudaDecodeOps, SwigluLinearAdd) {
  for (int64_t B : {1, 64}) {
    swiglu_linear_add_case(B, 3584, 18944, DType::BF16, 1e-2);  // down
    swiglu_linear_add_case(B, 3584, 18944, DType::F32, 1e-5);
  }
}

// More GEMV rows (2-4 fused in one launch, 6 split over two launches), x too long to stage
// (the norm / SwiGLU then run on their own), and K that the 16-byte loads cannot take.
TEST_F(CudaDecodeOps, FusedProjectionsOtherRowsAndShapes) {
  struct RowsGuard {
    int64_t old = cuda::gemv_max_rows();
    ~RowsGuard() { cuda::set_gemv_max_rows(old); }
  } guard;
  cuda::set_gemv_max_rows(8);
  for (int64_t B : {2, 3, 4, 6, 8}) {
    rms_norm_linear_case(B, 4608, 3584, DType::BF16, true, 1e-2);
    rms_norm_linear_case(B, 1000, 3584, DType::F32, true, 1e-5);
    linear_add_case(B, 3584, 3584, DType::F32, 1e-5);
    swiglu_linear_add_case(B, 3584, 18944, DType::BF16, 1e-2);
    swiglu_linear_add_case(B, 1000, 18944, DType::F32, 1e-5);
  }
  cuda::set_gemv_max_rows(1);
  rms_norm_linear_case(1, 999, 32768, DType::F32, true, 1e-5);  // 128 KB of x: not staged
  swiglu_linear_add_case(1, 333, 30000, DType::BF16, 1e-2);
  linear_add_case(1, 777, 30000, DType::F32, 1e-5);
  rms_norm_linear_case(1, 100, 3586, DType::BF16, true, 1e-2);  // K % 8 != 0
  swiglu_linear_add_case(1, 101, 1002, DType::F32, 1e-5);       // K % 4 != 0
  linear_add_case(1, 17, 3588, DType::BF16, 1e-2);
  rms_norm_linear_case(1, 5, 16, DType::F32, true, 1e-5);  // fewer rows than one block
}

// Batch 1, BF16 weights at the full model's shapes: each fused projection against the kernels
// it replaces (norm + GEMV, GEMV + add, SwiGLU + GEMV + add). The weights rotate over copies
// that together exceed L2, as in a decode step. Prints microseconds and weight bandwidth; no
// speed assertion (shared machines vary).
TEST_F(CudaDecodeOps, FusedProjectionTimingFullShapes) {
  enum Kind { kNorm, kAdd, kSwiglu };
  struct Case {
    const char* name;
    int64_t N, K;
    Kind kind;
  };
  const Case cases[] = {{"qkv", 4608, 3584, kNorm},
                        {"o", 3584, 3584, kAdd},
                        {"gate_up", 37888, 3584, kNorm},
                        {"down", 3584, 18944, kSwiglu},
                        {"lm_head", 158720, 3584, kNorm}};
  for (const Case& c : cases) {
    const double bytes = 2.0 * static_cast<double>(c.N * c.K);
    const int64_t copies = std::max<int64_t>(2, static_cast<int64_t>(400e6 / bytes) + 1);
    const Tensor host = rand_bf16({c.N, c.K}, 0.05f);
    std::vector<Tensor> ws;
    for (int64_t i = 0; i < copies; ++i) ws.push_back(gpu(host));
    const Tensor nw = gpu(rand_f32({c.K}, 1.0f)), b = gpu(rand_f32({c.N}, 0.5f));
    const Tensor in = gpu(rand_f32({1, c.kind == kSwiglu ? 2 * c.K : c.K}, 1.0f));
    Tensor x = gpu(rand_f32({1, c.N}, 1.0f)), y;
    auto w = [&](int64_t i) -> const Tensor& { return ws[static_cast<size_t>(i % copies)]; };
    const bool bias = c.kind == kNorm && c.N == 4608;
    auto fused = [&](int64_t i) {
      if (c.kind == kNorm)
        y = ops::rms_norm_linear(in, nw, 1e-6f, w(i), bias ? b : Tensor());
      else if (c.kind == kAdd)
        ops::linear_add_(x, in, w(i));
      else
        ops::swiglu_linear_add_(x, in, w(i));
    };
    auto separate = [&](int64_t i) {
      if (c.kind == kNorm)
        y = ops::linear(ops::rms_norm(in, nw, 1e-6f), w(i), bias ? b : Tensor());
      else if (c.kind == kAdd)
        ops::add_(x, ops::linear(in, w(i)));
      else
        ops::add_(x, ops::linear(ops::swiglu(in), w(i)));
    };
    const double t_fused = graph_us(fused, 2 * copies);
    const double t_separate = graph_us(separate, 2 * copies);
    std::printf(
        "  %-8s %6lld x %5lld BF16, batch 1: fused %.2f us (%.0f GB/s), separate %.2f us "
        "(%.0f GB/s)\n",
        c.name, static_cast<long long>(c.N), static_cast<long long>(c.K), t_fused,
        bytes / t_fused * 1e-3, t_separate, bytes / t_separate * 1e-3);
    EXPECT_GT(t_fused, 0.0);
    if (c.kind == kNorm) EXPECT_EQ(rel_l2(y, y.to(Device::cpu())), 0.0);  // written, finite
  }
}

}  // namespace
}  // namespace stepaudio
