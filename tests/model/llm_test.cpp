// The Qwen2 decoder, the splice and the KV cache against the official model's tensors (golden
// README §3, §5, §7): the golden input_ids + golden adaptor outputs in, every layer, the hidden
// state, the last logits and 16 greedy steps out.
#include <gtest/gtest.h>

#include <cstdio>

#include <numeric>

#include "model/audio_splice.h"
#include "model/encoder.h"
#include "model/llm.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

using namespace testing_model;

constexpr double kTol = 1e-4;  // golden README §7

std::vector<std::string> llm_cases() {
  std::vector<std::string> out;
  for (const auto& [name, c] : manifest().at("cases").items())
    if (c.contains("input_ids")) out.push_back(name);
  return out;
}

const Qwen2LM& tiny_lm() {
  static const Qwen2LM lm(tiny_checkpoint());
  return lm;
}

std::vector<Tensor> golden_adaptor_rows(const std::string& c) {
  std::vector<Tensor> rows;
  for (int64_t k = 0; goldens().has(fmt::format("{}/chunk{}/adaptor_out", c, k)); ++k)
    rows.push_back(golden(fmt::format("{}/chunk{}/adaptor_out", c, k)).clone());
  return rows;
}

// The 5 largest entries, descending; ties keep the lower index first (torch.topk on CPU does).
std::vector<std::pair<float, int64_t>> top5(const Tensor& logits) {
  const float* p = logits.data<float>();
  std::vector<int64_t> idx(static_cast<size_t>(logits.numel()));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + 5, idx.end(),
                    [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  std::vector<std::pair<float, int64_t>> out;
  for (int i = 0; i < 5; ++i)
    out.emplace_back(p[idx[static_cast<size_t>(i)]], idx[static_cast<size_t>(i)]);
  return out;
}

TEST(LlmGolden, HasCases) { EXPECT_GE(llm_cases().size(), 4u); }

TEST(LlmGolden, SpliceEveryLayerHiddenAndLogits) {
  for (const std::string& c : llm_cases()) {
    SCOPED_TRACE(c);
    const std::vector<int32_t> ids = golden_ids(c + "/input_ids");
    const std::vector<Tensor> audio = golden_adaptor_rows(c);
    Tensor emb = tiny_lm().embed(ids);
    Tensor inputs = splice_audio(emb, ids, audio);
    const Tensor gin = golden(c + "/inputs_embeds");
    ASSERT_EQ(inputs.shape(), gin.shape());
    // Text rows are the bf16 table values: exact. Audio rows are the adaptor rows given.
    std::vector<bool> audio_row(ids.size(), false);
    for (size_t i = 0, k = 0; i < ids.size(); ++i)
      if (ids[i] == kAudioStartId) {
        for (int64_t r = 0; r < audio[k].dim(0); ++r)
          audio_row[i + 1 + static_cast<size_t>(r)] = true;
        ++k;
      }
    const int64_t Hd = inputs.dim(1);
    for (size_t i = 0; i < ids.size(); ++i) {
      const Tensor a = inputs.slice_rows(static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
      const Tensor b = gin.slice_rows(static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
      if (audio_row[i])
        EXPECT_LE(max_abs_diff(a, b), kTol) << "audio row " << i;
      else
        EXPECT_EQ(max_abs_diff(a, b), 0.0) << "text row " << i;
    }
    (void)Hd;

    KVCache cache(tiny_lm().config(), static_cast<int64_t>(ids.size()));
    std::vector<Tensor> outs;
    Tensor logits = tiny_lm().forward(inputs, cache, false, &outs);
    const int64_t layers = tiny_lm().config().num_hidden_layers;
    ASSERT_EQ(static_cast<int64_t>(outs.size()), layers + 1);
    for (int64_t i = 0; i < layers; ++i)
      EXPECT_LE(
          max_abs_diff(outs[static_cast<size_t>(i)], golden(fmt::format("{}/layer{}_out", c, i))),
          kTol)
          << "layer " << i;
    EXPECT_LE(max_abs_diff(outs.back(), golden(c + "/hidden")), kTol);
    EXPECT_EQ(logits.shape(), (Shape{1, tiny_lm().config().vocab_size}));
    EXPECT_LE(max_abs_diff(logits, golden(c + "/last_logits")), kTol);
    std::printf("  %s: hidden %.2e last_logits %.2e\n", c.c_str(),
                max_abs_diff(outs.back(), golden(c + "/hidden")),
                max_abs_diff(logits, golden(c + "/last_logits")));
    EXPECT_EQ(cache.length(), static_cast<int64_t>(ids.size()));
  }
}

TEST(LlmGolden, GreedyWithKVCache) {
  for (const std::string& c : llm_cases()) {
    SCOPED_TRACE(c);
    const std::vector<int32_t> ids = golden_ids(c + "/input_ids");
    const std::vector<int64_t> want_ids = golden_i64(c + "/greedy_ids");
    const std::vector<int64_t> want_top_ids = golden_i64(c + "/greedy_top5_ids");
    const std::vector<float> want_top_vals = golden(c + "/greedy_top5_vals").to_f32_vector();
    const size_t steps = want_ids.size();
    ASSERT_GE(steps, 1u);

    KVCache cache(tiny_lm().config(), static_cast<int64_t>(ids.size() + steps));
    Tensor logits =
        tiny_lm().forward(splice_audio(tiny_lm().embed(ids), ids, golden_adaptor_rows(c)), cache);
    std::vector<int64_t> got;
    double worst = 0;
    for (size_t s = 0; s < steps; ++s) {
      const auto t5 = top5(logits);
      for (size_t j = 0; j < 5; ++j) {
        EXPECT_EQ(t5[j].second, want_top_ids[s * 5 + j]) << "step " << s << " rank " << j;
        worst =
            std::max(worst, std::fabs(static_cast<double>(t5[j].first) - want_top_vals[s * 5 + j]));
      }
      const int32_t next = static_cast<int32_t>(t5[0].second);
      got.push_back(next);
      if (s + 1 < steps) logits = tiny_lm().forward(tiny_lm().embed({&next, 1}), cache);
    }
    EXPECT_EQ(got, want_ids);
    EXPECT_LE(worst, kTol);
    std::printf("  %s: greedy top5 values max diff %.2e\n", c.c_str(), worst);
    EXPECT_EQ(cache.length(), static_cast<int64_t>(ids.size() + steps - 1));
  }
}

TEST(LlmGolden, FullPipelineFromGoldenMels) {
  // Encoder output spliced into the prompt matches the official inputs_embeds.
  static const AudioEncoder enc(tiny_checkpoint());
  int checked = 0;
  for (const std::string& c : llm_cases()) {
    std::vector<Tensor> mels;
    for (int64_t k = 0; goldens().has(fmt::format("{}/chunk{}/mel", c, k)); ++k)
      mels.push_back(golden(fmt::format("{}/chunk{}/mel", c, k)).clone());
    if (mels.empty()) continue;
    SCOPED_TRACE(c);
    const std::vector<int32_t> ids = golden_ids(c + "/input_ids");
    Tensor inputs = splice_audio(tiny_lm().embed(ids), ids, enc.encode(mels));
    EXPECT_LE(max_abs_diff(inputs, golden(c + "/inputs_embeds")), kTol);
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

TEST(LlmCache, ChunkedPrefillEqualsOneShot) {
  // Prefill in pieces of 7, 1 and the rest gives the same logits as one pass.
  const std::vector<int32_t> ids = golden_ids("text_2plus2/input_ids");
  const int64_t L = static_cast<int64_t>(ids.size());
  Tensor emb = tiny_lm().embed(ids);
  KVCache one(tiny_lm().config(), L), parts(tiny_lm().config(), L);
  Tensor all = tiny_lm().forward(emb, one, true);
  Tensor a = tiny_lm().forward(emb.slice_rows(0, 7), parts, true);
  Tensor b = tiny_lm().forward(emb.slice_rows(7, 8), parts, true);
  Tensor c = tiny_lm().forward(emb.slice_rows(8, L), parts, true);
  EXPECT_LE(max_abs_diff(a, all.slice_rows(0, 7)), 1e-5);
  EXPECT_LE(max_abs_diff(b, all.slice_rows(7, 8)), 1e-5);
  EXPECT_LE(max_abs_diff(c, all.slice_rows(8, L)), 1e-5);
  // truncate + rerun reproduces the tail; clear starts over.
  parts.truncate(8);
  EXPECT_LE(max_abs_diff(tiny_lm().forward(emb.slice_rows(8, L), parts, true), c), 0.0);
  parts.clear();
  EXPECT_EQ(parts.length(), 0);
  EXPECT_LE(max_abs_diff(tiny_lm().forward(emb, parts, true), all), 1e-5);
}

TEST(LlmErrors, BadInputsFail) {
  const Qwen2LM& lm = tiny_lm();
  KVCache cache(lm.config(), 4);
  EXPECT_THROW(lm.forward(Tensor::zeros({5, lm.config().hidden_size}, DType::F32), cache), Error);
  EXPECT_EQ(cache.length(), 0);  // nothing committed by a failed forward
  EXPECT_THROW(lm.forward(Tensor::zeros({1, 7}, DType::F32), cache), Error);
  EXPECT_THROW(lm.forward(Tensor::zeros({0, lm.config().hidden_size}, DType::F32), cache), Error);
  const int32_t bad[] = {0, static_cast<int32_t>(lm.config().vocab_size)};
  EXPECT_THROW(lm.embed(bad), Error);
  const int32_t neg[] = {-1};
  EXPECT_THROW(lm.embed(neg), Error);
  TextConfig other = lm.config();
  other.num_hidden_layers += 1;
  KVCache wrong(other, 4);
  EXPECT_THROW(lm.forward(Tensor::zeros({1, lm.config().hidden_size}, DType::F32), wrong), Error);
}

TEST(Splice, CountsAndBounds) {
  const int64_t Hd = 4;
  const std::vector<int32_t> ids = {1, kAudioStartId, 9, 9, 2, kAudioStartId, 9, 3};
  Tensor emb = Tensor::zeros({8, Hd}, DType::F32);
  Tensor r0 = Tensor::from_vector(std::vector<float>(2 * Hd, 1.0f), {2, Hd});
  Tensor r1 = Tensor::from_vector(std::vector<float>(1 * Hd, 2.0f), {1, Hd});
  Tensor out = splice_audio(emb, ids, {r0, r1});
  const std::vector<float> v = out.to_f32_vector();
  const float want_row[8] = {0, 0, 1, 1, 0, 0, 2, 0};
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < Hd; ++j)
      EXPECT_EQ(v[static_cast<size_t>(i * Hd + j)], want_row[i]) << i;
  EXPECT_EQ(emb.to_f32_vector(), std::vector<float>(8 * Hd, 0.0f));  // input untouched
  EXPECT_THROW(splice_audio(emb, ids, {r0}), Error);                 // 2 starts, 1 chunk
  Tensor r_long = Tensor::zeros({3, Hd}, DType::F32);
  EXPECT_THROW(splice_audio(emb, ids, {r0, r_long}), Error);  // runs past the end
  EXPECT_THROW(splice_audio(emb, ids, {r0, Tensor::zeros({1, Hd + 1}, DType::F32)}), Error);
}

}  // namespace
}  // namespace stepaudio
