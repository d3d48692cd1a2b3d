// The batched decode step on CUDA (tiny-a): fp32 compute against the CPU step, the captured CUDA
// graph against eager launches (identical ids and logits), and the generator's greedy ids on the
// GPU against the CPU's.
#include <gtest/gtest.h>

#include <cstdlib>

#include "backend/cuda/allocator.h"
#include "backend/cuda/kernels_cuda.h"
#include "engine/decode_runner.h"
#include "engine/generator.h"
#include "model/llm.h"
#include "ops/decode_ops.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

using namespace testing_model;

std::vector<int32_t> prompt(size_t n, int32_t salt) {
  std::vector<int32_t> ids{151644, 8948};
  for (size_t i = 2; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 7919 + salt) % 150000));
  return ids;
}

Tensor i32(const std::vector<int32_t>& v, Device d) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t.to(d);
}

TEST(DecodeCuda, Fp32StepMatchesCpuStep) {
  ASSERT_TRUE(cuda_available());
  cuda::set_poison_allocations(true);
  const Qwen2LM cpu(tiny_checkpoint());
  const Qwen2LM gpu(tiny_checkpoint(), Device::cuda(0), DType::F32);
  const auto a = prompt(11, 2), b = prompt(40, 4);
  KVCache cc = cpu.make_cache(64, 2), gc = gpu.make_cache(64, 2);
  EXPECT_EQ(gc.dtype(), DType::F32);
  for (auto* p : {&a, &b}) {
    const int64_t slot = p == &a ? 1 : 0;
    cpu.forward(cpu.embed(*p), cc, false, nullptr, slot);
    gpu.forward(gpu.embed(*p), gc, false, nullptr, slot);
  }
  const std::vector<int32_t> ids{42, 1000}, pos{11, 40}, slots{1, 0};
  Tensor want = cpu.decode_step(i32(ids, Device::cpu()), i32(pos, Device::cpu()),
                                i32(slots, Device::cpu()), cc);
  Tensor got = gpu.decode_step(i32(ids, Device::cuda(0)), i32(pos, Device::cuda(0)),
                               i32(slots, Device::cuda(0)), gc);
  EXPECT_LE(max_abs_diff(got, want), 1e-4);
  cuda::set_poison_allocations(false);
}

// Runs `steps` sampled steps for two rows and returns the ids.
std::vector<int32_t> run_rows(const Qwen2LM& lm, bool graph, int steps, Tensor* last_logits) {
  const auto a = prompt(9, 1), b = prompt(25, 3);
  KVCache cache = lm.make_cache(64, 2);
  lm.forward(lm.embed(a), cache, false, nullptr, 0);
  lm.forward(lm.embed(b), cache, false, nullptr, 1);
  DecodeRunner run(lm, cache, 2, graph);
  ops::SampleParams p;
  p.greedy = 0;
  p.temperature = 0.9f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.repetition_penalty = 1.1f;
  p.seed = 99;
  run.set_row(0, 0, static_cast<int64_t>(a.size()), 5, p, a, 1);
  p.seed = 100;
  run.set_row(1, 1, static_cast<int64_t>(b.size()), 7, p, b, 1);
  std::vector<int32_t> out;
  for (int s = 0; s < steps; ++s) {
    const auto& ids = run.step();
    out.insert(out.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(run.graphed(), graph && steps > 1);
  *last_logits = run.logits().to(Device::cpu());
  return out;
}

TEST(DecodeCuda, GraphReplayEqualsEagerSteps) {
  ASSERT_TRUE(cuda_available());
  for (DType w : {DType::F32, DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(w));
    const Qwen2LM lm(tiny_checkpoint(), Device::cuda(0), w);
    Tensor lg_graph, lg_eager;
    const auto g = run_rows(lm, true, 12, &lg_graph);
    const auto e = run_rows(lm, false, 12, &lg_eager);
    EXPECT_EQ(g, e);
    EXPECT_EQ(max_abs_diff(lg_graph, lg_eager), 0.0);
  }
}

// With programmatic dependent launch on (STEPAUDIO_PDL=1: the decode chain's kernels may start
// while the one before drains), graph replay and eager steps give the same bits as without it.
TEST(DecodeCuda, ProgrammaticLaunchChangesNothing) {
  ASSERT_TRUE(cuda_available());
  for (DType w : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(w));
    const Qwen2LM lm(tiny_checkpoint(), Device::cuda(0), w);
    Tensor lg_ref, lg_graph, lg_eager;
    cuda::set_gemv_pdl(false);
    const auto ref = run_rows(lm, false, 12, &lg_ref);
    cuda::set_gemv_pdl(true);
    const auto g = run_rows(lm, true, 12, &lg_graph);
    const auto e = run_rows(lm, false, 12, &lg_eager);
    cuda::set_gemv_pdl(false);
    EXPECT_EQ(g, ref);
    EXPECT_EQ(e, ref);
    EXPECT_EQ(max_abs_diff(lg_graph, lg_ref), 0.0);
    EXPECT_EQ(max_abs_diff(lg_eager, lg_ref), 0.0);
  }
}

TEST(DecodeCuda, GeneratorGreedyIdsMatchCpu) {
  ASSERT_TRUE(cuda_available());
  const Qwen2LM cpu(tiny_checkpoint());
  const Qwen2LM gpu(tiny_checkpoint(), Device::cuda(0), DType::F32);
  GenerationConfig cfg;
  cfg.max_new_tokens = 24;
  cfg.stop_ids = {};
  const auto p = prompt(30, 8);
  const Generation want = Generator(cpu, nullptr).run(p, {}, cfg, nullptr);
  const Generation got = Generator(gpu, nullptr).run(p, {}, cfg, nullptr);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.tokens.size(), 24u);
}

}  // namespace
}  // namespace stepaudio
