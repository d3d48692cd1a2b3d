// The Qwen2 decoder on CUDA against the official tiny-a goldens (golden README §7): with F32
// weights on the GPU (fp32 compute) every layer, the hidden state, the last logits and the 16
// greedy ids must meet the CPU tolerances; with BF16 weights (bf16 tensor-core prefill, the
// official inference dtype) and with F16 weights the README's bf16 bounds hold and the first
// greedy id is the same.
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/cuda/allocator.h"
#include "model/audio_splice.h"
#include "model/llm.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

using namespace testing_model;

std::vector<std::string> llm_cases() {
  std::vector<std::string> out;
  for (const auto& [name, c] : manifest().at("cases").items())
    if (c.contains("input_ids")) out.push_back(name);
  return out;
}

std::vector<Tensor> golden_adaptor_rows(const std::string& c) {
  std::vector<Tensor> rows;
  for (int64_t k = 0; goldens().has(fmt::format("{}/chunk{}/adaptor_out", c, k)); ++k)
    rows.push_back(golden(fmt::format("{}/chunk{}/adaptor_out", c, k)).clone());
  return rows;
}

int64_t argmax(const Tensor& logits) {
  const float* p = logits.data<float>();
  return std::max_element(p, p + logits.numel()) - p;  // first index on ties, as torch
}

struct Tolerances {
  double hidden, logits;
  bool all_greedy;  // every greedy id, or the first only
};

void run_case(const Qwen2LM& lm, const std::string& c, const Tolerances& tol) {
  SCOPED_TRACE(c);
  const std::vector<int32_t> ids = golden_ids(c + "/input_ids");
  const std::vector<int64_t> want = golden_i64(c + "/greedy_ids");
  Tensor inputs = splice_audio(lm.embed(ids), ids, golden_adaptor_rows(c));
  KVCache cache(lm.config(), static_cast<int64_t>(ids.size() + want.size()), Device::cuda(0));
  std::vector<Tensor> outs;
  Tensor logits = lm.forward(inputs, cache, false, &outs);
  ASSERT_TRUE(logits.device().is_cpu());
  const int64_t layers = lm.config().num_hidden_layers;
  ASSERT_EQ(static_cast<int64_t>(outs.size()), layers + 1);
  for (int64_t i = 0; i < layers; ++i) {
    ASSERT_TRUE(outs[static_cast<size_t>(i)].device().is_cuda());
    EXPECT_LE(
        max_abs_diff(outs[static_cast<size_t>(i)], golden(fmt::format("{}/layer{}_out", c, i))),
        tol.hidden)
        << "layer " << i;
  }
  const double dh = max_abs_diff(outs.back(), golden(c + "/hidden"));
  const double dl = max_abs_diff(logits, golden(c + "/last_logits"));
  EXPECT_LE(dh, tol.hidden);
  EXPECT_LE(dl, tol.logits);
  std::printf("[ %s ] max|hidden diff| %.3g, max|logit diff| %.3g\n", c.c_str(), dh, dl);

  std::vector<int64_t> got;
  for (size_t s = 0; s < want.size(); ++s) {
    got.push_back(argmax(logits));
    if (s + 1 == want.size()) break;
    const int32_t id = static_cast<int32_t>(got.back());
    logits = lm.forward(lm.embed(std::span<const int32_t>(&id, 1)), cache);
  }
  if (tol.all_greedy)
    EXPECT_EQ(got, want);
  else
    EXPECT_EQ(got.front(), want.front());
  EXPECT_EQ(cache.length(), static_cast<int64_t>(ids.size() + want.size() - 1));
}

TEST(LlmCudaGolden, Fp32ComputeMeetsCpuTolerances) {
  ASSERT_TRUE(cuda_available());
  cuda::set_poison_allocations(true);
  const Qwen2LM lm(tiny_checkpoint(), Device::cuda(0), DType::F32);
  const auto cases = llm_cases();
  ASSERT_GE(cases.size(), 4u);
  for (const std::string& c : cases) run_case(lm, c, {1e-4, 1e-4, true});
  cuda::set_poison_allocations(false);
}

TEST(LlmCudaGolden, Bf16ComputeWithinBf16Bounds) {
  ASSERT_TRUE(cuda_available());
  cuda::set_poison_allocations(true);
  const Qwen2LM lm(tiny_checkpoint(), Device::cuda(0), DType::BF16);
  for (const std::string& c : llm_cases()) run_case(lm, c, {0.1, 0.05, false});
  cuda::set_poison_allocations(false);
}

// F16 weights (`run --precision f16`): 10 mantissa bits, so the bf16 bounds hold with room.
TEST(LlmCudaGolden, F16WeightsWithinBf16Bounds) {
  ASSERT_TRUE(cuda_available());
  cuda::set_poison_allocations(true);
  const Qwen2LM lm(tiny_checkpoint(), Device::cuda(0), DType::F16);
  for (const std::string& c : llm_cases()) run_case(lm, c, {0.1, 0.05, false});
  cuda::set_poison_allocations(false);
}

TEST(LlmCudaGolden, CacheOnAnotherDeviceFails) {
  ASSERT_TRUE(cuda_available());
  const Qwen2LM lm(tiny_checkpoint(), Device::cuda(0), DType::F32);
  KVCache cpu_cache(lm.config(), 8);
  const std::vector<int32_t> ids{151666, 8948};
  EXPECT_THROW(lm.forward(lm.embed(ids), cpu_cache), Error);
}

}  // namespace
}  // namespace stepaudio
